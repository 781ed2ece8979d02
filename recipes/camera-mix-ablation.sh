#!/usr/bin/env bash
# Why is the camera model weak on Gaussian noise? Short runs from scratch at equal steps, one per noise mix and
# architecture, each scored on colour CSet5 with Gaussian and camera noise.
# Usage: recipes/camera-mix-ablation.sh DATA WORK [STEPS [RUN...]]   (WORK as for recipes/camera-colour.sh: it reuses
# the shrunk photos there; RUN: some of the names below, default all). Prints "run | noise | noisy -> denoised dB"
# per pair; finished runs are not trained again. docs/camera-noise.md has the figures of one.
set -euo pipefail
data=${1:?give the data folder}; work=${2:?give a scratch folder}; steps=${3:-1000}
photos="$work/camera-photos"
[ -d "$photos" ] || { echo "run recipes/camera-colour.sh first (or its downscale lines) to make $photos" >&2; exit 2; }

# name: noise, then the train options that differ from the camera model's (a 3-channel U-Net of width 24)
declare -A runs=(
  [gaussian]="gaussian:0-50"
  [camera]="camera:0-1+camera-jpeg:0-1"
  [mix]="camera:0-1+camera-jpeg:0-1+gaussian:0-50"
  [gray-gaussian]="gaussian:0-50 --channels 1"     # the Gaussian models' layout: one gray model per opponent plane
)
names=("${@:4}"); [ ${#names[@]} -gt 0 ] || names=(gaussian camera mix gray-gaussian)
for name in "${names[@]}"; do
  read -r noise extra <<< "${runs[$name]:?unknown run $name}"
  out="$work/ablation-$name-$steps.keras"
  # shellcheck disable=SC2086  # $extra holds options
  [ -e "$out" ] || denoise train --dataset folder --path "$photos" --channels 3 --noise "$noise" \
    --arch unet --width 24 --depth 3 --loss mse --patch-size 144 --crop-size 128 --batch-size 8 \
    --epochs 1 --steps-per-epoch "$steps" --learning-rate 1e-3 --seed 15 $extra --out "$out" >/dev/null
  for test in gaussian:15 gaussian:25 camera:0.5 camera-jpeg:0.5; do
    scores=$(denoise eval "$out" --path "$data/cset5" --channels 3 --noise "$test" --precision float32 |
      awk '/noisy input/ {noisy = $5} /denoised/ {print noisy " -> " $4}')
    echo "$name | $test | $scores dB"
  done
done
