#!/usr/bin/env bash
# How the shipped salt-and-pepper model (denoise/weights/impulse-gray.keras) was made; its model card has the
# figures. It is fine-tuned from stage 2 of the Gaussian gray model, which this recipe makes first with
# recipes/gaussian-gray.sh (or finds already made in the same WORK).
# Usage: recipes/impulse-gray.sh DATA WORK   (DATA: the project's data folder with train400/; WORK: a scratch folder
# for the training runs, which may be the one recipes/gaussian-gray.sh used). Rerunning resumes an interrupted run.
#
# The shipped model was trained before `denoise train --init-from` warmed its learning rate up over the first 200
# steps (commit a1b44ad, 2026-11-30); today's train does, so a rerun is close to the shipped run, not bit for bit
# the same.
set -euo pipefail
data=${1:?give the data folder}; work=${2:?give a scratch folder}
mkdir -p "$work"

# The starting model: stages 1 and 2 of the Gaussian gray model (resumed, or nothing to do, when already made).
"$(dirname "$0")/gaussian-gray.sh" "$data" "$work" 2
source "$(dirname "$0")/train-stage.sh"  # train OUT OPTION...: a new run, or --resume of it
stage2="$work/gaussian-gray-stage2.keras"

# A salt-and-pepper --noise makes train build the impulse layers (FillImpulses before the network, KeepUncorrupted
# after it); --init-from a Gaussian model copies its network's weights into them.
out="$work/impulse-float32.keras"
train "$out" --dataset folder --path "$data/train400" --channels 1 \
  --noise salt-and-pepper:0-0.6 --init-from "$stage2" --patch-size 64 --batch-size 32 \
  --epochs 120 --steps-per-epoch 100 --learning-rate 5e-4 --seed 0

# Weights stored as float16 (half the size; computed in float32).
denoise compact "$out" --out "$work/impulse-gray.keras"
