package httpserver

import "time"

// BackupView is the backup section of /debug/status.
type BackupView struct {
	Storage     string
	Running     string // "" when idle
	LastBackup  BackupRun
	LastRestore BackupRun
}

// BackupRun is one backup or restore; zero Started: none since start.
type BackupRun struct {
	Name, Engine, Position string
	Size                   int64
	Started                time.Time
	Duration               time.Duration
	Phases                 string // restores: "download+decompress 1.2s, prepare 0.3s, …"
	Err                    string
}
