#!/usr/bin/env bash
# Download COCO 2017 detection data into DIR, in the layout the configs
# expect (configs/_base_/datasets/coco_detection.py, data_root='data/coco/'):
#
#   DIR/annotations/instances_train2017.json   (and val, captions, keypoints)
#   DIR/train2017/                             118,287 images
#   DIR/val2017/                               5,000 images
#
#   bash tools/download_coco.sh data/coco
#
# Run it again after an interruption: finished steps are skipped, a partial
# download resumes (curl -C - / wget -c), and each archive is checked
# against its published size and MD5 before it is unpacked.
#
# Checksums and sizes (the defaults below): the MD5s are the ones published
# with the archives' URLs in PaddleDetection's ppdet/utils/download.py
# (DATASETS['coco']) and, identically, in intel/neural-compressor's
# examples/pytorch/fx/object_detection/maskrcnn/download_dataset.sh and
# NVIDIA DeepLearningExamples' download scripts; the sizes in bytes are those
# of the archives on images.cocodataset.org as listed by several download
# manifests. The images are served over plain HTTP (cocodataset.org's own
# links; its HTTPS name does not match every certificate chain), so the MD5
# check is what guarantees the content.
#
# For tests, COCO_BASE_URL replaces http://images.cocodataset.org (e.g. a
# file:// folder with the same zips/ and annotations/ layout), and
# COCO_MD5_{ANNOTATIONS,VAL2017,TRAIN2017} / COCO_SIZE_{...} replace the
# checksums and sizes (an empty size skips the size check).
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: bash tools/download_coco.sh [--no-train] [--keep-zips] DIR

Download COCO 2017 (train2017.zip 18 GiB, val2017.zip 778 MiB,
annotations_trainval2017.zip 241 MiB from images.cocodataset.org), check each
archive's size and MD5, and unpack it into DIR:

  DIR/annotations/instances_train2017.json, instances_val2017.json, ...
  DIR/train2017/   118,287 images
  DIR/val2017/     5,000 images

Idempotent: what is already in DIR is skipped, an interrupted download
resumes. Archives are kept in DIR/.download_coco/ until they are unpacked.
Needs curl (or wget), unzip (or python3) and about 38 GiB of free disk while
unpacking (19 GiB after).

Options:
  --no-train   skip train2017.zip (enough for tools/test.py and validation)
  --keep-zips  keep the archives in DIR/.download_coco/ after unpacking
  -h, --help   show this help

The configs read data/coco/. For another DIR, link it
(ln -s DIR data/coco) or override the paths, e.g.
  python tools/train.py configs/psalm_yolo_h100.py --cfg-options \
      train_dataloader.dataset.data_root=DIR/ \
      val_dataloader.dataset.data_root=DIR/ \
      val_evaluator.ann_file=DIR/annotations/instances_val2017.json
EOF
}

die() {
    echo "download_coco.sh: $*" >&2
    exit 1
}

NO_TRAIN=0
KEEP_ZIPS=0
DIR=''
while [[ $# -gt 0 ]]; do
    case "$1" in
    -h | --help)
        usage
        exit 0
        ;;
    --no-train) NO_TRAIN=1 ;;
    --keep-zips) KEEP_ZIPS=1 ;;
    -*)
        echo "download_coco.sh: unknown option: $1" >&2
        usage >&2
        exit 2
        ;;
    *)
        if [[ -n "$DIR" ]]; then
            echo "download_coco.sh: one DIR only (got '$DIR' and '$1')" >&2
            usage >&2
            exit 2
        fi
        DIR=$1
        ;;
    esac
    shift
done
if [[ -z "$DIR" ]]; then
    echo 'download_coco.sh: DIR is missing' >&2
    usage >&2
    exit 2
fi
[[ "$DIR" == / ]] || DIR=${DIR%/}

BASE_URL=${COCO_BASE_URL:-http://images.cocodataset.org}
BASE_URL=${BASE_URL%/}
# name | path under BASE_URL | MD5 | size in bytes | folder it unpacks to
ARCHIVES=(
    "annotations_trainval2017.zip|annotations/annotations_trainval2017.zip|${COCO_MD5_ANNOTATIONS-f4bbac642086de4f52a3fdda2de5fa2c}|${COCO_SIZE_ANNOTATIONS-252907541}|annotations"
    "val2017.zip|zips/val2017.zip|${COCO_MD5_VAL2017-442b8da7639aecaf257c1dceb8ba8c80}|${COCO_SIZE_VAL2017-815585330}|val2017"
    "train2017.zip|zips/train2017.zip|${COCO_MD5_TRAIN2017-cced6f7f71b7629ddf16f17bbcfab6b2}|${COCO_SIZE_TRAIN2017-19336861798}|train2017"
)
STATE="$DIR/.download_coco"

file_size() {
    wc -c <"$1" | tr -d ' '
}

md5_of() {
    if command -v md5sum >/dev/null 2>&1; then
        md5sum "$1" | cut -d' ' -f1
    elif command -v md5 >/dev/null 2>&1; then
        md5 -q "$1"
    else
        python3 - "$1" <<'EOF'
import hashlib
import sys
digest = hashlib.md5()
with open(sys.argv[1], 'rb') as f:
    for chunk in iter(lambda: f.read(1 << 20), b''):
        digest.update(chunk)
print(digest.hexdigest())
EOF
    fi
}

download() { # url out size
    local url=$1 out=$2 size=$3
    if [[ -f "$out" && -n "$size" ]]; then
        local have
        have=$(file_size "$out")
        if ((have == size)); then
            echo "[skip] $(basename "$out"): already downloaded ($size bytes)"
            return
        fi
        if ((have > size)); then
            echo "[redo] $(basename "$out"): $have bytes, more than the" \
                "expected $size; downloading it again"
            rm -f "$out"
        fi
    fi
    echo "[get]  $url"
    if command -v curl >/dev/null 2>&1; then
        curl -fL --retry 5 --retry-delay 10 -C - -o "$out" "$url" ||
            die "download of $url failed; run again to resume it"
    elif command -v wget >/dev/null 2>&1; then
        wget -c -O "$out" "$url" ||
            die "download of $url failed; run again to resume it"
    else
        die 'needs curl or wget'
    fi
}

verify() { # file md5 size
    local file=$1 md5=$2 size=$3 name have actual
    name=$(basename "$file")
    if [[ -n "$size" ]]; then
        have=$(file_size "$file")
        if ((have != size)); then
            die "$name has $have bytes, expected $size: the download is" \
                "incomplete; run again to resume it"
        fi
    fi
    echo "[md5]  $name (expected $md5; large archives take minutes)"
    actual=$(md5_of "$file")
    if [[ "$actual" != "$md5" ]]; then
        mv -f "$file" "$file.bad"
        die "$name: MD5 $actual, expected $md5; moved it to $file.bad;" \
            "run again to download it afresh"
    fi
    echo "$md5" >"$file.md5-ok"
}

unpack() { # zip folder
    local zip=$1 folder=$2 tmp
    tmp="$STATE/unpack-$folder"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    echo "[zip]  $(basename "$zip") -> $DIR/$folder/"
    if command -v unzip >/dev/null 2>&1; then
        unzip -q "$zip" -d "$tmp"
    else
        python3 -m zipfile -e "$zip" "$tmp"
    fi
    [[ -d "$tmp/$folder" ]] || die "$(basename "$zip") holds no $folder/"
    # One rename: DIR/folder never exists half-written.
    mv "$tmp/$folder" "$DIR/$folder"
    rm -rf "$tmp"
}

mkdir -p "$STATE"
for entry in "${ARCHIVES[@]}"; do
    IFS='|' read -r name path md5 size folder <<<"$entry"
    if [[ "$folder" == train2017 && $NO_TRAIN == 1 ]]; then
        echo "[skip] $name (--no-train)"
        continue
    fi
    if [[ -d "$DIR/$folder" ]]; then
        echo "[skip] $DIR/$folder/ exists (delete it to download again)"
        continue
    fi
    zip="$STATE/$name"
    if [[ -f "$zip" && -f "$zip.md5-ok" && "$(cat "$zip.md5-ok")" == "$md5" ]]; then
        echo "[skip] $name: already downloaded and checked"
    else
        rm -f "$zip.md5-ok"
        download "$BASE_URL/$path" "$zip" "$size"
        verify "$zip" "$md5" "$size"
    fi
    unpack "$zip" "$folder"
    if [[ $KEEP_ZIPS == 0 ]]; then
        rm -f "$zip" "$zip.md5-ok"
    fi
done
rmdir "$STATE" 2>/dev/null || true

required=("$DIR/annotations/instances_val2017.json" "$DIR/val2017")
if [[ $NO_TRAIN == 0 ]]; then
    required+=("$DIR/annotations/instances_train2017.json" "$DIR/train2017")
fi
for path in "${required[@]}"; do
    [[ -e "$path" ]] || die "$path is missing after unpacking"
done
echo "COCO 2017 is ready in $DIR:"
for folder in train2017 val2017; do
    if [[ -d "$DIR/$folder" ]]; then
        echo "  $DIR/$folder/: $(find "$DIR/$folder" -type f | wc -l | tr -d ' ') images"
    fi
done
echo "  $DIR/annotations/: $(cd "$DIR/annotations" && ls | tr '\n' ' ')"
