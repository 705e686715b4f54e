#!/bin/sh
# Regenerates the test caller audio in this folder (8 kHz mono 16-bit, as a call delivers it).
# English: Festival's kal diphone voice (apt install festival festvox-kallpc16k);
# Mandarin and Korean: espeak-ng (apt install espeak-ng). Needs sox.
set -eu
cd "$(dirname "$0")"
en() { echo "$2" | text2wave -eval '(voice_kal_diphone)' -o /tmp/ivr-tts.wav && sox -q /tmp/ivr-tts.wav -r 8000 -c 1 -b 16 "$1.wav"; }
es() { espeak-ng -v "$2" -w /tmp/ivr-tts.wav "$3" && sox -q /tmp/ivr-tts.wav -r 8000 -c 1 -b 16 "$1.wav"; }
en en_file_claim "I want to file a claim"
en en_policy_question "I have a question about my policy"
en en_pay_premium "I want to pay my premium"
en en_real_person "Let me talk to a real person"
es cmn_claim cmn "你好，我想申请理赔"
es ko_claim ko "보험금 청구하고 싶어요"
es ko_agent ko "상담원 연결해 주세요"
rm -f /tmp/ivr-tts.wav
