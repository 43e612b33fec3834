#!/usr/bin/env bash
# Installs the font packs of the synthetic page generator (crates/synth) from
# Debian packages: every pack, or only the packs named as arguments.
#
#   scripts/install-fonts.sh                   # all packs
#   scripts/install-fonts.sh serif typewriter  # some packs
#   scripts/install-fonts.sh --list            # packs and their packages
#
# Safe to run again: packages already installed are skipped, so it costs one
# dpkg query when everything is there. Uses sudo (non-interactive) when not
# root. The pack table lives in crates/synth/src/fonts/packs.rs; a unit test
# there checks that the lists below match it.
set -euo pipefail

PACKS=(serif sans mono typewriter condensed handwriting)
declare -A PACKAGES=(
  [serif]="fonts-dejavu-core fonts-liberation2 fonts-crosextra-caladea fonts-ebgaramond fonts-linuxlibertine fonts-urw-base35"
  [sans]="fonts-dejavu-core fonts-liberation2 fonts-crosextra-carlito fonts-open-sans fonts-roboto-unhinted fonts-linuxlibertine fonts-urw-base35"
  [mono]="fonts-dejavu-core fonts-liberation2 fonts-noto-mono fonts-inconsolata fonts-courier-prime fonts-linuxlibertine"
  [typewriter]="fonts-courier-prime fonts-urw-base35 fonts-tlwg-typewriter-ttf"
  [condensed]="fonts-dejavu-extra fonts-urw-base35 fonts-roboto-unhinted fonts-open-sans"
  [handwriting]="fonts-dancingscript fonts-breip fonts-dkg-handwriting fonts-humor-sans"
)

usage() {
  echo "usage: $0 [--list] [PACK...]   (packs: ${PACKS[*]})" >&2
  exit 2
}

if [ "${1:-}" = "--list" ]; then
  for pack in "${PACKS[@]}"; do
    echo "$pack: ${PACKAGES[$pack]}"
  done
  exit 0
fi
case "${1:-}" in -h | --help) usage ;; esac

wanted=("$@")
[ "${#wanted[@]}" -gt 0 ] || wanted=("${PACKS[@]}")
packages=()
for pack in "${wanted[@]}"; do
  pack="${pack,,}"
  [ -n "${PACKAGES[$pack]+x}" ] || { echo "install-fonts: unknown pack '$pack'" >&2; usage; }
  for pkg in ${PACKAGES[$pack]}; do
    [[ " ${packages[*]} " == *" $pkg "* ]] || packages+=("$pkg")
  done
done

installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}
missing=()
for pkg in "${packages[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "fonts: packs ${wanted[*]} already installed (${#packages[@]} packages)"
  exit 0
fi

sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo -n"
export DEBIAN_FRONTEND=noninteractive
echo "fonts: installing ${missing[*]}"
# Try without refreshing the package lists first (fast on a warm machine);
# refresh them once when a package is not found.
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
  || { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
echo "fonts: installed ${missing[*]} (packs ${wanted[*]})"
