#!/usr/bin/env bash
# How the width-32 Gaussian gray model, the gray default until 2026-12-01, was made (its card:
# docs/retired-models/gaussian-gray-width32.md). recipes/impulse-gray.sh starts from its stage 2.
# Usage: recipes/gaussian-gray.sh DATA WORK [LAST_STAGE]   (DATA: the project's data folder with train400/; WORK: a
# scratch folder for the training runs; LAST_STAGE 1, 2 or 3, default 3: stop after that stage, as
# recipes/impulse-gray.sh does with 2). Rerunning resumes an interrupted stage; a finished one has nothing left to do.
#
# The shipped model was trained before `denoise train --init-from` warmed its learning rate up over the first 200
# steps (commit a1b44ad, 2026-11-30); today's train does, so stages 2 and 3 of a rerun are close to the shipped
# run, not bit for bit the same.
set -euo pipefail
data=${1:?give the data folder}; work=${2:?give a scratch folder}; last=${3:-3}
mkdir -p "$work"
train400="$data/train400"

source "$(dirname "$0")/train-stage.sh"  # train OUT OPTION...: a new run, or --resume of it

# Stage 1: a width-32 U-Net from scratch, blind Gaussian noise (sigma 0-50 per patch), 64x64 patches on a grid, MSE.
stage1="$work/gaussian-gray-stage1.keras"
train "$stage1" --dataset folder --path "$train400" --channels 1 \
  --noise gaussian:0-50 --arch unet --width 32 --depth 3 --patch-size 64 --batch-size 32 \
  --epochs 80 --steps-per-epoch 100 --learning-rate 1e-3 --seed 0
if [ "$last" -le 1 ]; then exit 0; fi

# Stage 2: fine-tuned from stage 1 with a fresh optimizer (the architecture is taken from it).
# recipes/impulse-gray.sh starts from this model.
stage2="$work/gaussian-gray-stage2.keras"
train "$stage2" --dataset folder --path "$train400" --channels 1 \
  --noise gaussian:0-50 --init-from "$stage1" --patch-size 64 --batch-size 32 \
  --epochs 110 --steps-per-epoch 100 --learning-rate 5e-4 --seed 0
if [ "$last" -le 2 ]; then exit 0; fi

# Stage 3: fine-tuned from stage 2 on random 64x64 crops of 128x128 patches (a fresh crop each time one is drawn).
stage3="$work/gaussian-gray-stage3.keras"
train "$stage3" --dataset folder --path "$train400" --channels 1 \
  --noise gaussian:0-50 --init-from "$stage2" --patch-size 128 --crop-size 64 --batch-size 32 \
  --epochs 300 --steps-per-epoch 100 --learning-rate 5e-4 --seed 0

# Weights stored as float16 (half the size; computed in float32).
denoise compact "$stage3" --out "$work/gaussian-gray.keras"
