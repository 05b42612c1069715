// Package backup provides online backups and restores: backup engines and the storages they write to.
package backup
