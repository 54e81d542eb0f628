# The browser for the page's end-to-end tests: Debian's Chromium, driven by Playwright.
#
# Source it (`. .ci/browser.sh`) before the tests. Installs the `chromium` package when
# /usr/bin/chromium is missing (needs root). If it cannot, it says so; under CI the
# browser tests then fail rather than skip (tests/test_ui_browser.py).

if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "browser: installing Chromium from Debian's packages" >&2
        { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
            || echo "browser: apt-get install chromium failed; the browser tests cannot run" >&2
    else
        echo "browser: no /usr/bin/chromium and not root; the browser tests cannot run" >&2
    fi
fi
[ -x /usr/bin/chromium ] && echo "browser: $(/usr/bin/chromium --version 2>/dev/null)" >&2
true
