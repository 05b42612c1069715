package main

import (
	"database/sql"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// directLeg is MariaDB over the MySQL protocol: a new *sql.DB per point with
// MaxOpenConns = clients, as an application's pool would be sized.
func directLeg(m *mariadb) *leg {
	return &leg{name: legDirect, open: func(n int) (target, func(), error) {
		db, err := sql.Open("mysql", m.appDSN())
		if err != nil {
			return nil, nil, err
		}
		db.SetMaxOpenConns(n)
		db.SetMaxIdleConns(n)
		return directTarget{db}, func() { _ = db.Close() }, nil
	}}
}

// tabletLeg shares one gRPC connection for all clients, as vtgate does.
func tabletLeg(name string, t *tablet) *leg {
	return &leg{name: name, tablet: t, open: func(int) (target, func(), error) {
		return t.client, func() {}, nil
	}}
}

// describeMachine reads the CPU model, memory and kernel from /proc.
func describeMachine() machine {
	m := machine{Nproc: runtime.NumCPU()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				f := strings.Fields(rest)
				if kb, err := strconv.ParseFloat(f[0], 64); err == nil {
					m.MemGiB = kb / (1 << 20)
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}
