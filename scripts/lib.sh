# Shared set-up steps for scripts/demo, scripts/test and scripts/bench (sourced, not run).
# Everything here is idempotent: run it on a fresh clone or for the hundredth time.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# Install Debian packages that are missing (as root, or through sudo when available).
ensure_debian_packages() {
    local missing=()
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "Installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq || $sudo apt-get update
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || $sudo apt-get install -y --no-install-recommends "${missing[@]}"
}

# WeasyPrint needs Pango (and fonts to draw with).
ensure_pdf_libraries() {
    ensure_debian_packages libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core
}

# Create .venv and install the package when pyproject.toml (or requirements.lock) changed.
# Without extras (scripts/demo): the production install, every package from requirements.lock
# with its hash checked. With extras (scripts/test, scripts/bench: "test"): from pyproject.toml.
ensure_venv() {
    local extras="${1:-}"
    # A venv whose creation was interrupted has a python but no pip: make it again.
    if [ ! -x "$PY" ] || ! "$PY" -m pip --version >/dev/null 2>&1; then
        # Debian's python3 needs python3-venv (ensurepip) to create a virtual environment.
        python3 -c "import ensurepip" 2>/dev/null || ensure_debian_packages python3-venv
        say "Creating the virtual environment in .venv"
        rm -rf "$VENV"
        python3 -m venv "$VENV"
    fi
    local inputs=("$ROOT/pyproject.toml")
    [ -n "$extras" ] || inputs+=("$ROOT/requirements.lock")
    local stamp="$VENV/.installed-$(cat "${inputs[@]}" | sha256sum | cut -c1-16)${extras:+-$extras}"
    if [ ! -f "$stamp" ]; then
        "$PY" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
        if [ -n "$extras" ]; then
            say "Installing Python dependencies (with $extras)"
            "$PY" -m pip install --quiet -e "$ROOT[$extras]"
        else
            say "Installing the locked Python dependencies (requirements.lock, hashes checked)"
            "$PY" -m pip install --quiet --require-hashes -r "$ROOT/requirements.lock"
            "$PY" -m pip install --quiet --no-deps -e "$ROOT"
        fi
        rm -f "$VENV"/.installed-*
        touch "$stamp"
    fi
}

# Compile the Flask-Babel catalogues (.po → .mo); .mo files are not kept in git.
compile_translations() {
    "$VENV/bin/pybabel" compile -f -d "$ROOT/vaikuttavuus/translations" >/dev/null
}
