package dbconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// CredentialsFile is Vitess's file credentials server (--db-credentials-server file,
// --db-credentials-file): a JSON object {"user": ["password", …]}, the first password being
// the one used. It is read at start and re-read by Reload (SIGHUP); every new MySQL
// connection asks it for the password, so a rotated password applies without a restart.
// A file that fails to load on Reload leaves the credentials in force. Safe for concurrent
// use.
type CredentialsFile struct {
	path string

	mu       sync.RWMutex
	creds    map[string]string // user → the password in force
	loadedAt time.Time
	lastErr  error // last failed Reload; nil after a good one
}

// OpenCredentialsFile reads path; an unreadable or malformed file is an error naming it.
func OpenCredentialsFile(path string) (*CredentialsFile, error) {
	f := &CredentialsFile{path: path}
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// ParseCredentials parses the file's content. An error never quotes the content: it holds
// passwords.
func ParseCredentials(data []byte) (map[string]string, error) {
	var raw map[string][]string
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		// json errors quote at most a type name or an offset, never the content; still, keep
		// only the offset so that no part of a malformed password can appear.
		return nil, fmt.Errorf("not Vitess's JSON {\"user\": [\"password\"]}%s", jsonOffset(err))
	}
	if dec.More() {
		return nil, errors.New("not Vitess's JSON {\"user\": [\"password\"]}: data after the object")
	}
	if raw == nil {
		return nil, errors.New("not Vitess's JSON {\"user\": [\"password\"]}: null")
	}
	creds := make(map[string]string, len(raw))
	for user, pw := range raw {
		if len(pw) == 0 {
			return nil, fmt.Errorf("user %q has no password (give [\"\"] for an empty one)", user)
		}
		creds[user] = pw[0]
	}
	return creds, nil
}

func jsonOffset(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return " (syntax error at byte " + strconv.FormatInt(se.Offset, 10) + ")"
	case errors.As(err, &te):
		return " (a " + te.Value + " where " + te.Type.String() + " belongs, at byte " + strconv.FormatInt(te.Offset, 10) + ")"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return " (empty or truncated)"
	}
	return ""
}

// Reload re-reads the file. On error the credentials in force stay, and the error (naming
// the file, never its content) is returned and kept for Status.
func (f *CredentialsFile) Reload() error {
	data, err := os.ReadFile(f.path)
	var creds map[string]string
	if err == nil {
		creds, err = ParseCredentials(data)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.lastErr = fmt.Errorf("--db-credentials-file %s: %w", f.path, err)
		return f.lastErr
	}
	f.creds, f.loadedAt, f.lastErr = creds, time.Now(), nil
	return nil
}

// Password is user's password in the file; ok is false for a user the file does not list.
func (f *CredentialsFile) Password(user string) (pw string, ok bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	pw, ok = f.creds[user]
	return pw, ok
}

// Path is the file's path.
func (f *CredentialsFile) Path() string { return f.path }

// Status is when the credentials in force were loaded and the last failed reload.
func (f *CredentialsFile) Status() (loadedAt time.Time, lastErr error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.loadedAt, f.lastErr
}

func (f *CredentialsFile) passwords() []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]string, 0, len(f.creds))
	for _, pw := range f.creds {
		out = append(out, pw)
	}
	return out
}

// Password is role's password now: the credentials file's when it lists the role's user
// (as vttablet's credentials server), else the configured one.
func (c Config) Password(role Role) string {
	cred := c.Users[role]
	if c.CredentialsFile != nil {
		if pw, ok := c.CredentialsFile.Password(cred.User); ok {
			return pw
		}
	}
	return cred.Password
}

// PasswordSource returns a function giving role's password at the time of the call, for
// connectors that dial long after the configuration was made.
func (c Config) PasswordSource(role Role) func() string {
	return func() string { return c.Password(role) }
}

// Secrets are every password tabletd holds: each role's, and every one in the credentials
// file. Masks built from them keep the passwords out of logs, pages and errors.
func (c Config) Secrets() []string {
	var out []string
	for _, r := range Roles {
		out = append(out, c.Users[r].Password)
	}
	if c.CredentialsFile != nil {
		out = append(out, c.CredentialsFile.passwords()...)
	}
	return out
}

// MinMaskLen is the shortest secret Mask replaces: masking a one- to three-character
// password by value would blank ordinary text everywhere. Such a password is kept out of
// every output by construction (flags redacted by name), not by masking.
const MinMaskLen = 4

// Mask returns b with every occurrence of each secret (as written, and as quoted in JSON or
// Go syntax, which is how logs and pages carry strings) replaced by as many '*': lengths are
// kept, so a Content-Length stays true. b is modified in place and returned.
func Mask(b []byte, secrets []string) []byte {
	for _, s := range secrets {
		if len(s) < MinMaskLen {
			continue
		}
		for _, form := range secretForms(s) {
			maskAll(b, []byte(form))
		}
	}
	return b
}

// MaskString is Mask for a string.
func MaskString(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) < MinMaskLen {
			continue
		}
		for _, form := range secretForms(sec) {
			if strings.Contains(s, form) {
				s = strings.ReplaceAll(s, form, strings.Repeat("*", len(form)))
			}
		}
	}
	return s
}

// MaskForms are the byte strings Mask replaces for secrets (for writers that must catch a
// secret split across two writes).
func MaskForms(secrets []string) [][]byte {
	var out [][]byte
	for _, s := range secrets {
		if len(s) < MinMaskLen {
			continue
		}
		for _, f := range secretForms(s) {
			out = append(out, []byte(f))
		}
	}
	return out
}

// secretForms are the spellings of s that outputs carry: raw, JSON-escaped, Go-quoted
// (without the surrounding quotes), and SQL-quoted with doubled quotes.
func secretForms(s string) []string {
	forms := []string{s}
	add := func(f string) {
		for _, x := range forms {
			if x == f {
				return
			}
		}
		forms = append(forms, f)
	}
	if j, err := json.Marshal(s); err == nil {
		add(string(j[1 : len(j)-1]))
	}
	q := strconv.Quote(s)
	add(q[1 : len(q)-1])
	add(strings.ReplaceAll(s, "'", "''"))
	// html/template escapes these in /debug/status.
	add(strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "'", "&#39;", `"`, "&#34;").Replace(s))
	return forms
}

func maskAll(b, secret []byte) {
	for i := 0; ; {
		j := bytes.Index(b[i:], secret)
		if j < 0 {
			return
		}
		for k := i + j; k < i+j+len(secret); k++ {
			b[k] = '*'
		}
		i += j + len(secret)
	}
}
