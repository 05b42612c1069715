// Package consolidator shares one MySQL execution among identical concurrent reads, within bounds on waiters and memory.
package consolidator
