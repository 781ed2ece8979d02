#!/usr/bin/env bash
# How the shipped camera-noise model (denoise/weights/camera-colour.keras) was made; its model card has the figures.
# Usage: recipes/camera-colour.sh DATA WORK   (DATA: the project's data folder with urban100/ mcmaster/ unsplash30/
# cbsd432/; WORK: a scratch folder for the shrunk photos and the training run). Rerunning resumes the training.
set -euo pipefail
data=${1:?give the data folder}; work=${2:?give a scratch folder}
photos="$work/camera-photos"

# The clean side: detailed colour photos shrunk 2-4x with a box filter, which removes their own noise, sharpening
# and JPEG traces (TRAINING-SETS.md asks for it), beside CBSD432 as it is.
python recipes/downscale.py "$data/urban100" --factor 2 --out "$photos/urban100"
python recipes/downscale.py "$data/mcmaster" --factor 2 --out "$photos/mcmaster"
python recipes/downscale.py "$data/unsplash30" --factor 4 --out "$photos/unsplash30"
python recipes/downscale.py "$data/cbsd432" --factor 1 --out "$photos/cbsd432"

# A 3-channel U-Net of width 24 (the size that keeps `denoise run` above 1 MP/s on 2 AVX2 cores), trained on a
# third each of camera noise, camera noise then JPEG, and Gaussian noise, 5% of patches clean, with the MSE loss.
out="$work/camera-colour-train.keras"
resume=(); [ -e "${out%.keras}.resume.keras" ] && resume=(--resume)
denoise train --dataset folder --path "$photos" --channels 3 \
  --noise camera:0-1+camera-jpeg:0-1+gaussian:0-50 --arch unet --width 24 --depth 3 \
  --loss mse --clean-fraction 0.05 --patch-size 144 --crop-size 128 --batch-size 8 \
  --epochs 26 --steps-per-epoch 500 --learning-rate 1e-3 --seed 15 --out "$out" "${resume[@]}"

# Weights stored as float16 (half the size; computed in float32).
denoise compact "$out" --out "$work/camera-colour.keras"
