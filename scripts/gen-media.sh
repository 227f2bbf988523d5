#!/usr/bin/env bash
# Regenerates the built-in sound set in media/sounds/ (8 kHz mono 16-bit WAV), which the
# daemon embeds with include_bytes! (src/media/prompt/library.rs). The WAVs are committed;
# run this only to change them, then commit the result.
#
#   announcements  scripts/media/prompts.tsv (name TAB text) -> espeak-ng, voice nb (bokmål)
#                  -> sox: lower the gain (headroom for the filters), band-limit to the telephone band, resample to 8 kHz, trim the
#                  silence espeak leaves around the words, normalise the peak, pad a little
#   music on hold  scripts/media/moh.py (seeded, standard library only) -> moh/default.wav
#
# Deterministic: the same espeak-ng, sox and Python give the same bytes (sox runs without
# dither, so it draws no random numbers). Needs: espeak-ng, sox, python3
# (Debian: apt-get install -y espeak-ng sox python3).
#
# Usage: scripts/gen-media.sh [OUTPUT_DIR]   (default: media/sounds in the repository)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/media/sounds}"
PROMPTS="$ROOT/scripts/media/prompts.tsv"
VOICE="nb"
SPEED_WPM=145
PEAK_DBFS=-4

for tool in espeak-ng sox python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "gen-media.sh: $tool is missing (Debian: apt-get install -y espeak-ng sox python3)" >&2
        exit 1
    fi
done

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

count=0
while IFS=$'\t' read -r name text; do
    case "$name" in ''|'#'*) continue ;; esac
    if [ -z "$text" ]; then
        echo "gen-media.sh: $PROMPTS: no text for $name" >&2
        exit 1
    fi
    mkdir -p "$OUT/$(dirname "$name")"
    espeak-ng -v "$VOICE" -s "$SPEED_WPM" -w "$TMP/raw.wav" -- "$text"
    # -D: no dither (keeps the output reproducible). The silence/reverse pair trims both ends.
    sox "$TMP/raw.wav" -D -b 16 -e signed-integer -c 1 "$OUT/$name.wav" \
        gain -6 highpass 150 lowpass 3400 rate -v 8000 \
        silence 1 0.01 -45d reverse silence 1 0.01 -45d reverse \
        norm "$PEAK_DBFS" pad 0.04 0.08
    count=$((count + 1))
done < "$PROMPTS"

mkdir -p "$OUT/moh"
python3 "$ROOT/scripts/media/moh.py" "$OUT/moh/default.wav"
count=$((count + 1))

echo "gen-media.sh: wrote $count files to $OUT ($(du -sh "$OUT" | cut -f1))"
