# Sourced by the recipes: `train OUT OPTION...` runs `denoise train OPTION... --out OUT`, adding --resume when an
# interrupted run left its checkpoint beside OUT, so rerunning a recipe continues where it stopped.
train() {
  local out=$1; shift
  local resume=(); [ -e "${out%.keras}.resume.keras" ] && resume=(--resume)
  denoise train "$@" --out "$out" "${resume[@]}"
}
