// Package plan turns a SQL text into a cached plan: its plan type, every table it touches, and where its bind variables go.
package plan
