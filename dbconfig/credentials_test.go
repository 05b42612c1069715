package dbconfig

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseCredentials(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want map[string]string
		ok   bool
	}{
		{"vitess format", `{"vt_app": ["app-pw"], "vt_dba": ["dba-pw", "old-pw"]}`, map[string]string{"vt_app": "app-pw", "vt_dba": "dba-pw"}, true},
		{"empty password given", `{"vt_app": [""]}`, map[string]string{"vt_app": ""}, true},
		{"empty object", `{}`, map[string]string{}, true},
		{"no password", `{"vt_app": []}`, nil, false},
		{"string instead of list", `{"vt_app": "hunter22"}`, nil, false},
		{"truncated", `{"vt_app": ["hunter22"`, nil, false},
		{"empty file", ``, nil, false},
		{"null", `null`, nil, false},
		{"trailing data", `{"vt_app": ["x"]} {"y": ["z"]}`, nil, false},
		{"array", `[{"Username": "u", "Password": "hunter22"}]`, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCredentials([]byte(tc.in))
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
			if err != nil {
				// The error never quotes the file: it holds passwords.
				if strings.Contains(err.Error(), "hunter22") {
					t.Fatalf("error quotes the content: %v", err)
				}
				return
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("%s: got %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

// TestCredentialsFileReload: a good reload replaces the passwords, a bad one keeps them;
// Config.Password follows the file for the users it lists.
func TestCredentialsFileReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creds.json")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"vt_app": ["first"]}`)
	f, err := OpenCredentialsFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := Default()
	c.Users[Dba] = Credential{User: "vt_dba", Password: "from-flag"}
	c.CredentialsFile = f
	pw := c.PasswordSource(App)
	if got := pw(); got != "first" {
		t.Fatalf("app password %q", got)
	}
	if got := c.Password(Dba); got != "from-flag" {
		t.Fatalf("a user the file does not list keeps its own password; got %q", got)
	}
	write(`{"vt_app": ["second"], "vt_dba": ["dba-file"]}`)
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	if pw() != "second" || c.Password(Dba) != "dba-file" {
		t.Fatalf("after reload: app %q dba %q", pw(), c.Password(Dba))
	}
	write(`{"vt_app": ["third"`)
	if err := f.Reload(); err == nil {
		t.Fatal("a truncated file was accepted")
	}
	if pw() != "second" {
		t.Fatalf("a failed reload changed the password to %q", pw())
	}
	if _, lastErr := f.Status(); lastErr == nil {
		t.Fatal("Status does not report the failed reload")
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := f.Reload(); err == nil || pw() != "second" {
		t.Fatalf("a missing file: err %v, password %q", err, pw())
	}
	secrets := c.Secrets()
	for _, want := range []string{"second", "dba-file", "from-flag"} {
		found := false
		for _, s := range secrets {
			found = found || s == want
		}
		if !found {
			t.Fatalf("Secrets %v lacks %q", secrets, want)
		}
	}
}

func TestMask(t *testing.T) {
	secrets := []string{`pa"ss'w<rd`, "abc", "hunter22"}
	for _, tc := range []struct{ name, in, want string }{
		{"raw", `password=hunter22 again hunter22`, `password=******** again ********`},
		{"json escaped", `{"pw":"pa\"ss'w\u003crd"}`, `{"pw":"****************"}`},
		{"go quoted", `"pa\"ss'w<rd"`, `"***********"`},
		{"sql quoted", `MASTER_PASSWORD = 'pa"ss''w<rd'`, `MASTER_PASSWORD = '***********'`},
		{"html escaped", `<td>pa&#34;ss&#39;w&lt;rd</td>`, `<td>*********************</td>`},
		{"too short to mask", `abc abc`, `abc abc`},
		{"nothing", `nothing here`, `nothing here`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(Mask([]byte(tc.in), secrets)); got != tc.want {
				t.Fatalf("Mask = %s, want %s", got, tc.want)
			}
			if got := MaskString(tc.in, secrets); got != tc.want {
				t.Fatalf("MaskString = %s, want %s", got, tc.want)
			}
			if got := Mask([]byte(tc.in), secrets); len(got) != len(tc.in) {
				t.Fatalf("length changed")
			}
		})
	}
	forms := MaskForms(secrets)
	if len(forms) == 0 || !bytes.Equal(forms[0], []byte(secrets[0])) {
		t.Fatalf("MaskForms = %q", forms)
	}
}
