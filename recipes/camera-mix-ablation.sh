#!/usr/bin/env bash
# Why is the camera model weak on Gaussian noise? Short runs of the camera model's architecture from scratch, one
# per noise mix, at equal steps, each scored on CSet5 with Gaussian and camera noise.
# Usage: recipes/camera-mix-ablation.sh DATA WORK [STEPS]   (WORK as for recipes/camera-colour.sh: it reuses the
# shrunk photos there). Prints one "mix | noise | noisy -> denoised" line per pair; docs/camera-noise.md has a run.
set -euo pipefail
data=${1:?give the data folder}; work=${2:?give a scratch folder}; steps=${3:-1000}
photos="$work/camera-photos"
[ -d "$photos" ] || { echo "run recipes/camera-colour.sh first (or its downscale lines) to make $photos" >&2; exit 2; }

declare -A mixes=(
  [gaussian]=gaussian:0-50
  [camera]=camera:0-1+camera-jpeg:0-1
  [mix]=camera:0-1+camera-jpeg:0-1+gaussian:0-50
)
for name in gaussian camera mix; do
  out="$work/ablation-$name-$steps.keras"
  [ -e "$out" ] || denoise train --dataset folder --path "$photos" --channels 3 --noise "${mixes[$name]}" \
    --arch unet --width 24 --depth 3 --loss mse --patch-size 144 --crop-size 128 --batch-size 8 \
    --epochs 1 --steps-per-epoch "$steps" --learning-rate 1e-3 --seed 15 --out "$out" >/dev/null
  for noise in gaussian:15 gaussian:25 camera:0.5 camera-jpeg:0.5; do
    scores=$(denoise eval "$out" --path "$data/cset5" --noise "$noise" --precision float32 |
      awk '/noisy input|denoised/ {printf "%s ", $4}')
    echo "$name | $noise | ${scores% } dB"
  done
done
