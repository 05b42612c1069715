// Package tabletserver is tabletd's query service: it decides whether the tablet serves, admits and drains requests, checks their target, and answers StreamHealth.
package tabletserver
