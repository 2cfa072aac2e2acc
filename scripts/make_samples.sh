#!/usr/bin/env bash
# Regenerate the bundled sample recordings in shared/bucketscribe/samples/.
#
# Needs espeak-ng (1.51), sox (14.4.2) and ffmpeg (5.1, with libopus, libmp3lame, libx264).
# Deterministic for a given set of tool versions: no dither (sox -D -R), bit-exact muxing
# (ffmpeg -fflags +bitexact, which also fixes the Ogg stream serial), single-threaded x264,
# no metadata. Re-running it on the same tools gives byte-identical files.
#
# The sentences use ordinary words and no digits, so a word-error-rate check does not
# depend on how the recogniser writes numbers.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/../shared/bucketscribe/samples}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

for tool in espeak-ng sox ffmpeg; do
  command -v "$tool" >/dev/null || { echo "make_samples: $tool is not installed" >&2; exit 1; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

SOX=(sox -D -R -V1)
FFMPEG=(ffmpeg -nostdin -hide_banner -loglevel error -y)
# output options: no tags, and bit-exact muxing (a fixed Ogg serial, no encoder version strings)
EXACT=(-map_metadata -1 -fflags +bitexact)

# sox effects that cut espeak's leading and trailing silence (the bytes are precious)
TRIM=(silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse)

# speak VOICE WORDS_PER_MINUTE TEXT OUT.wav  ->  16 kHz mono 16-bit wav, peak-normalised
speak() {
  local voice="$1" speed="$2" text="$3" dest="$4"
  espeak-ng -v "$voice" -s "$speed" -w "$work/raw.wav" "$text"
  "${SOX[@]}" "$work/raw.wav" -r 16000 -c 1 -b 16 "$dest" "${TRIM[@]}" rate -h norm -1 pad 0.2 0.2
}

# --- three short English clips: three voices, three speeds, three containers ---------------
HELLO_TEXT="Hello and welcome. This is a short test of the transcription service."
WEATHER_TEXT="Tomorrow will be sunny in the morning, with light rain in the afternoon."
REPORT_TEXT="Please send the report to the sales team before the meeting on Friday."

speak en-us 150 "$HELLO_TEXT" "$out/hello_en.wav"

speak en-us+f3 150 "$WEATHER_TEXT" "$work/weather.wav"
"${FFMPEG[@]}" -i "$work/weather.wav" -c:a libopus -b:a 24k -application voip -flags:a +bitexact \
  "${EXACT[@]}" "$out/weather_en.ogg"

speak en-us+m3 160 "$REPORT_TEXT" "$work/report.wav"
"${FFMPEG[@]}" -i "$work/report.wav" -c:a libmp3lame -b:a 32k -flags:a +bitexact -write_xing 0 \
  "${EXACT[@]}" "$out/report_en.mp3"

# --- a stereo two-speaker call: agent on the left channel, customer on the right ----------
# 8 kHz G.711 mu-law, the usual format of call-centre recordings.
AGENT_1="Good morning, customer support. How can I help you?"
CUSTOMER_1="Hi, I would like to check my order."
AGENT_2="Your order was shipped yesterday and will arrive tomorrow."
CUSTOMER_2="Great, thank you very much."

turn=0
# turn SPEAKER(left|right) VOICE SPEED TEXT: one stereo piece with the other channel silent
turn() {
  local side="$1" voice="$2" speed="$3" text="$4" remix
  turn=$((turn + 1))
  if [[ "$side" == left ]]; then remix="1 0"; else remix="0 1"; fi
  espeak-ng -v "$voice" -s "$speed" -w "$work/turn.wav" "$text"
  # shellcheck disable=SC2086  # remix takes two separate arguments
  "${SOX[@]}" "$work/turn.wav" -r 8000 -c 2 -b 16 "$work/turn$turn.wav" \
    "${TRIM[@]}" rate -h norm -1 remix $remix pad 0 0.4
}
turn left en-us+m1 170 "$AGENT_1"
turn right en-gb+f2 165 "$CUSTOMER_1"
turn left en-us+m1 170 "$AGENT_2"
turn right en-gb+f2 165 "$CUSTOMER_2"
"${SOX[@]}" "$work"/turn{1,2,3,4}.wav -e mu-law -b 8 "$out/call_stereo.wav"

# --- a short video: a test pattern at 5 fps with a speech track (H.264 + AAC in MP4) ------
VIDEO_TEXT="Welcome to the product demo. In this video we show how to upload a file and read the transcript."
speak en-us+f4 160 "$VIDEO_TEXT" "$work/video.wav"
# the picture lasts exactly as long as the speech (-shortest is unreliable with lavfi sources)
video_s="$(soxi -D "$work/video.wav")"
"${FFMPEG[@]}" -f lavfi -i "testsrc=size=320x240:rate=5:duration=$video_s" -i "$work/video.wav" \
  -c:v libx264 -preset veryslow -crf 35 -pix_fmt yuv420p -threads 1 -flags:v +bitexact \
  -c:a aac -b:a 32k -flags:a +bitexact -movflags +faststart \
  "${EXACT[@]}" "$out/demo_video.mp4"

# --- the scripts the recordings were spoken from -------------------------------------------
json_string() {
  local text="$1"
  [[ "$text" != *'"'* && "$text" != *'\'* ]] || { echo "make_samples: quote in script" >&2; exit 1; }
  printf '"%s"' "$text"
}
{
  printf '{\n'
  printf '  "hello_en.wav": %s,\n' "$(json_string "$HELLO_TEXT")"
  printf '  "weather_en.ogg": %s,\n' "$(json_string "$WEATHER_TEXT")"
  printf '  "report_en.mp3": %s,\n' "$(json_string "$REPORT_TEXT")"
  printf '  "call_stereo.wav": %s,\n' "$(json_string "$AGENT_1 $CUSTOMER_1 $AGENT_2 $CUSTOMER_2")"
  printf '  "demo_video.mp4": %s\n' "$(json_string "$VIDEO_TEXT")"
  printf '}\n'
} >"$out/scripts.json"
{
  printf '{\n'
  printf '  "call_stereo.wav": [%s, %s]\n' \
    "$(json_string "$AGENT_1 $AGENT_2")" "$(json_string "$CUSTOMER_1 $CUSTOMER_2")"
  printf '}\n'
} >"$out/channel_scripts.json"

ls -l "$out"
