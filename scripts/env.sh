# Sourced by the scripts in this folder (not run): finds the go command and names the
# project's root. A fresh machine often has Go unpacked in /usr/local/go without it being on
# PATH; the official tarball's location is the one place we look besides PATH.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH=$PATH:/usr/local/go/bin
fi
if ! command -v go >/dev/null 2>&1; then
  echo "$(basename "$0"): no go command: install Go (go.mod names the version; an older Go" \
    "from 1.21 on downloads it by itself) into /usr/local/go or put it on PATH" >&2
  exit 1
fi
# Debian puts mariadbd and mariadb-install-db in /usr/sbin, which a plain user's PATH lacks.
case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH=$PATH:/usr/sbin ;; esac
