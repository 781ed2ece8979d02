#!/usr/bin/env bash
# How the shipped camera-noise model (denoise/weights/camera-colour.keras) was made; its model card has the figures.
# Usage: recipes/camera-colour.sh DATA WORK   (DATA: the project's data folder with urban100/ mcmaster/ unsplash30/
# cbsd432/; WORK: a scratch folder for the shrunk photos and the training run). Rerunning resumes the training.
set -euo pipefail
data=${1:?give the data folder}; work=${2:?give a scratch folder}
photos="$work/camera-photos"
source "$(dirname "$0")/train-stage.sh"  # train OUT OPTION...: a new run, or --resume of it

# The clean side: detailed colour photos shrunk 2-4x with a box filter, which removes their own noise, sharpening
# and JPEG traces (TRAINING-SETS.md asks for it), beside CBSD432 as it is.
python recipes/downscale.py "$data/urban100" --factor 2 --out "$photos/urban100"
python recipes/downscale.py "$data/mcmaster" --factor 2 --out "$photos/mcmaster"
python recipes/downscale.py "$data/unsplash30" --factor 4 --out "$photos/unsplash30"
python recipes/downscale.py "$data/cbsd432" --factor 1 --out "$photos/cbsd432"

noise=camera:0-1+camera-jpeg:0-1+gaussian:0-50

# Stage 1: a 3-channel U-Net of width 24 (the size that keeps `denoise run` above 1 MP/s on 2 AVX2 cores), trained
# from scratch on a third each of camera noise, camera noise then JPEG, and Gaussian noise, 5% of patches clean,
# with the MSE loss (the PSNR loss from scratch stayed at the identity: 27.56 dB in and out after 500 steps).
# The shipped model's stage 1 was stopped after epoch 21 of 26 (its best, 30.66 dB) to leave time for stage 2.
stage1="$work/camera-stage1.keras"
train "$stage1" --dataset folder --path "$photos" --channels 3 --noise "$noise" --arch unet --width 24 --depth 3 \
  --loss mse --clean-fraction 0.05 --patch-size 144 --crop-size 128 --batch-size 8 \
  --epochs 26 --steps-per-epoch 500 --learning-rate 1e-3 --seed 15

# Stage 2: fine-tuned with the PSNR loss (each patch's error in dB), which weighs light noise, where real photos
# are, as much as heavy; the same seed keeps the same validation images.
stage2="$work/camera-stage2.keras"
train "$stage2" --dataset folder --path "$photos" --channels 3 --noise "$noise" --init-from "$stage1" \
  --loss psnr --clean-fraction 0.05 --patch-size 144 --crop-size 128 --batch-size 8 \
  --epochs 6 --steps-per-epoch 500 --learning-rate 1e-4 --seed 15

# Stage 3: twice the share of camera noise with JPEG (the kind on which non-local means led), same loss and rate.
# The shipped model's stage 3 was stopped after epoch 4 of 6; its best was epoch 3.
stage3="$work/camera-stage3.keras"
train "$stage3" --dataset folder --path "$photos" --channels 3 --noise "camera:0-1+camera-jpeg:0-1+camera-jpeg:0-1+gaussian:0-50" \
  --init-from "$stage2" --loss psnr --clean-fraction 0.05 --patch-size 144 --crop-size 128 --batch-size 8 \
  --epochs 6 --steps-per-epoch 500 --learning-rate 1e-4 --seed 15

# Weights stored as float16 (half the size; computed in float32).
denoise compact "$stage3" --out "$work/camera-colour.keras"
