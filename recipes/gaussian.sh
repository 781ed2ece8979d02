#!/usr/bin/env bash
# How the shipped Gaussian model (denoise/weights/gaussian.keras) was made; its model card has the
# figures. It is a gray model: `denoise run` cleans a colour photo with it as three planes of an opponent colour
# space, so it trains on gray images.
# Usage: recipes/gaussian.sh DATA WORK   (DATA: the project's data folder with train400/; WORK: a scratch
# folder for the training runs). Rerunning resumes an interrupted stage (the shipped stage 1 ran in two sessions,
# the second with --resume); a finished one has nothing left to do.
#
# Both stages compute in bfloat16, which is fast on CPUs with AMX or AVX-512 BF16 and slow where it is emulated.
# The shipped model was trained before `denoise train --init-from` warmed its learning rate up over the first 200
# steps (commit a1b44ad, 2026-11-30); today's train does, so stage 2 of a rerun is close to the shipped run, not bit
# for bit the same.
set -euo pipefail
data=${1:?give the data folder}; work=${2:?give a scratch folder}
mkdir -p "$work"
train400="$data/train400"

source "$(dirname "$0")/train-stage.sh"  # train OUT OPTION...: a new run, or --resume of it

# Stage 1: a width-40 U-Net from scratch, MSE, random 128x128 crops of 160x160 patches, batch 8.
stage1="$work/gaussian-stage1.keras"
train "$stage1" --dataset folder --path "$train400" --channels 1 \
  --noise gaussian:0-50 --arch unet --width 40 --depth 3 --loss mse --precision bfloat16 \
  --patch-size 160 --crop-size 128 --batch-size 8 --epochs 600 --steps-per-epoch 100 --learning-rate 5e-4 --seed 7

# Stage 2: the PSNR loss (each patch's error in dB, so light noise weighs as much as heavy), 5% of the patches
# without noise, 160x160 crops of 176x176 patches, batch 6.
stage2="$work/gaussian-stage2.keras"
train "$stage2" --dataset folder --path "$train400" --channels 1 \
  --noise gaussian:0-50 --init-from "$stage1" --loss psnr --clean-fraction 0.05 --precision bfloat16 \
  --patch-size 176 --crop-size 160 --batch-size 6 --epochs 200 --steps-per-epoch 100 --learning-rate 1e-4 \
  --seed 12

# Weights stored as float16 (half the size; computed in float32).
denoise compact "$stage2" --out "$work/gaussian.keras"
