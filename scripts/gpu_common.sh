# shellcheck shell=bash
# gpu_common.sh: sourced by scripts/gpu_check.sh and scripts/gpu_rehearse.sh (never run
# alone). It turns what scripts/gpu_prepare.sh put in .gpu/ into a private prefix and a
# build that uses it, on a machine where nothing can be installed:
#
#   gpu_unpack GPU_DIR PREFIX     the .debs unpacked into PREFIX (dpkg -x, or Python where
#                                 dpkg is missing), never over /; then made usable from there
#   gpu_check_loadable PREFIX MANIFEST   every carried library loads on this machine's glibc
#   gpu_configure SRC BUILD PREFIX [CMAKE_ARG...]   CMake pointed at PREFIX only
#   gpu_verify_build BUILD PREFIX    PASS/FAIL lines: headers and libraries came from PREFIX
#   gpu_compare_models TESTUTIL_C    tests/testutil.c's tu_compare_models as NAME<TAB>FLAGS lines
#   gpu_mnist_head SRC DEST NTRAIN NTEST   the first images of an IDX data set, as a smaller one
#
# How the build is pointed at the prefix, and why it cannot silently use /usr instead:
# - pkg-config is the prefix's own pkgconf, run through a wrapper that sets
#   PKG_CONFIG_LIBDIR to the prefix's pkgconfig folders alone, so no /usr .pc file is seen.
#   The .pc files get their absolute /usr paths rewritten to PREFIX/usr (Debian's
#   some .pc files have absolute paths), and the alternatives links that no .deb holds
#   (libblas.so.3 and friends, where a carried package has them) are made from the manifest. criterion.pc
#   names libgit2, nanomsg, libffi and boxfort in Requires.private: their -dev packages
#   travel too (they are in the dependency closure), so pkg-config resolves them.
# - zlib and libpng are found by CMake's modules: their cache variables are set to the
#   prefix's files (taken from the prefix's own .pc files).
# - The programs get an RPATH (DT_RPATH, not DT_RUNPATH: --disable-new-dtags) naming the
#   prefix's library folders. DT_RPATH also serves the libraries' own dependencies
#   (libdnnl -> libOpenCL, libcriterion -> libgit2 -> ...), so nothing needs
#   LD_LIBRARY_PATH, which would also reach PyTorch in the benchmark.
# - gpu_verify_build then checks the result: the compiler's dependency records (ninja -t
#   deps, or the .d files of a Makefile build) and ldd of every program.

gpu_arch=x86_64-linux-gnu

# gpu_libdirs PREFIX: the prefix's library folders, the architecture's first, one per line.
gpu_libdirs() {
  local p=$1
  echo "$p/usr/lib/$gpu_arch"
  find "$p/usr/lib" -mindepth 2 \( -name 'lib*.so' -o -name 'lib*.so.*' \) \( -type f -o -type l \) -printf '%h\n' 2>/dev/null |
    sort -u | grep -vxF "$p/usr/lib/$gpu_arch"
}

# gpu_extract_debs DEST DEB...: unpack the data of each .deb into DEST, as dpkg -x does.
gpu_extract_debs() {
  local dest=$1
  shift
  mkdir -p "$dest"
  if command -v dpkg-deb >/dev/null 2>&1 && [[ -z "${GPU_UNPACK_WITH_PYTHON:-}" ]]; then
    local deb
    for deb in "$@"; do dpkg-deb -x "$deb" "$dest" || return 1; done
  else
    # No dpkg here: a .deb is an ar archive holding data.tar.{xz,gz,zst}; Debian 12 uses xz.
    python3 - "$dest" "$@" <<'PY'
import io, sys, tarfile
dest = sys.argv[1]
for deb in sys.argv[2:]:
    with open(deb, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            sys.exit(f"{deb}: not a .deb (ar) file")
        found = False
        while True:
            header = f.read(60)
            if len(header) < 60:
                break
            name = header[:16].decode().strip().rstrip("/")
            size = int(header[48:58])
            body = f.read(size)
            if size % 2:
                f.read(1)
            if name.startswith("data.tar"):
                if name.endswith(".zst"):
                    sys.exit(f"{deb}: zstd data; this Python cannot unpack it")
                with tarfile.open(fileobj=io.BytesIO(body)) as t:
                    if hasattr(tarfile, "fully_trusted_filter"):
                        t.extractall(dest, filter="fully_trusted")
                    else:
                        t.extractall(dest)
                found = True
        if not found:
            sys.exit(f"{deb}: no data.tar member")
PY
  fi
}

# gpu_unpack GPU_DIR PREFIX: a fresh prefix from GPU_DIR/debs and GPU_DIR/manifest.txt.
gpu_unpack() {
  local g=$1 p=$2 d link target f
  [[ -f "$g/manifest.txt" ]] || { echo "gpu_unpack: $g/manifest.txt is missing: run scripts/gpu_prepare.sh here and carry .gpu" >&2; return 1; }
  rm -rf "$p"
  gpu_extract_debs "$p" "$g"/debs/*.deb || { echo "gpu_unpack: unpacking the .deb files failed" >&2; return 1; }
  # Merged /usr, as on Debian 12: some packages ship /lib/..., others /usr/lib/...
  for d in lib lib64 bin sbin; do
    if [[ -d "$p/$d" && ! -L "$p/$d" ]]; then
      mkdir -p "$p/usr/$d"
      cp -a "$p/$d/." "$p/usr/$d/" && rm -rf "${p:?}/$d"
    fi
    [[ -e "$p/usr/$d" ]] && ln -sfn "usr/$d" "$p/$d"
  done
  # Absolute links (libz.so -> /lib/x86_64-linux-gnu/libz.so.1.2.13) must stay in the prefix.
  while IFS= read -r -d '' link; do
    target=$(readlink "$link")
    [[ "$target" == /* && "$target" != "$p"/* ]] && ln -sfn "$p$target" "$link"
  done < <(find "$p" -type l -print0)
  # The alternatives links no .deb holds.
  while read -r kind link target; do
    [[ "$kind" == alt ]] || continue
    mkdir -p "$(dirname "$p$link")"
    ln -sfn "$p$target" "$p$link"
  done < "$g/manifest.txt"
  # .pc files: every absolute /usr path into the prefix.
  while IFS= read -r -d '' f; do
    sed -E -i "s#(^|[=[:space:]]|-I|-L)/usr(/|[[:space:]]|\$)#\\1$p/usr\\2#g" "$f"
  done < <(find "$p" -name '*.pc' -type f -print0)
  # pkg-config that sees the prefix alone.
  mkdir -p "$p/.cuvae"
  local pcdirs
  pcdirs=$(find "$p/usr" -type d -name pkgconfig | sort | paste -sd:)
  cat > "$p/.cuvae/pkg-config" <<EOF
#!/bin/sh
# pkg-config over the prefix $p alone (written by scripts/gpu_common.sh)
unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
export PKG_CONFIG_LIBDIR='$pcdirs'
LD_LIBRARY_PATH='$p/usr/lib/$gpu_arch' exec '$p/usr/bin/pkgconf' "\$@"
EOF
  chmod +x "$p/.cuvae/pkg-config"
}

# gpu_check_loadable PREFIX MANIFEST: ldd of every carried shared library with the prefix's folders
# on the search path; a library whose dependency or glibc symbol version is missing here
# fails, naming it. Prints this machine's glibc.
gpu_check_loadable() {
  local p=$1 manifest=$2 f out bad="" libpath
  echo "glibc here: $(ldd --version 2>&1 | head -n 1)"
  libpath=$(gpu_libdirs "$p" | paste -sd:)
  while IFS= read -r -d '' f; do
    [[ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" == '177ELF' ]] || continue
    out=$(LD_LIBRARY_PATH=$libpath ldd "$f" 2>&1 | grep -E 'not found|version .* not found') || continue
    bad+="  ${f#"$p"}: $out"$'\n'
  done < <(find "$p/usr/lib" "$p/usr/bin" -type f \( -name '*.so' -o -name '*.so.*' -o -path '*/bin/*' \) -print0)
  if [[ -n "$bad" ]]; then
    echo "FAIL: carried libraries cannot load on this machine (its glibc: $(getconf GNU_LIBC_VERSION 2>/dev/null);"
    echo "      the manifest says they need up to $(awk '$1 == "glibc" {print $2}' "$manifest" | sort -V | tail -n 1)):"
    printf '%s' "$bad"
    return 1
  fi
  echo "every carried library loads here"
}

# gpu_configure SRC BUILD PREFIX [CMAKE_ARG...]: configure the build against the prefix alone;
# the further arguments go to cmake as they are (the CUDA mode and architectures).
gpu_configure() {
  local src=$1 b=$2 p=$3 pc=$3/.cuvae/pkg-config gen=()
  shift 3
  command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
  local zinc zlib pinc plib rpath
  zinc=$("$pc" --variable=includedir zlib) && zlib=$("$pc" --variable=libdir zlib)/libz.so &&
    pinc=$("$pc" --variable=includedir libpng) && plib=$("$pc" --variable=libdir libpng)/libpng.so ||
    { echo "gpu_configure: the prefix's pkg-config does not know zlib and libpng" >&2; return 1; }
  rpath=$(gpu_libdirs "$p" | paste -sd';')
  cmake -S "$src" -B "$b" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DPKG_CONFIG_EXECUTABLE="$pc" \
    -DCMAKE_PREFIX_PATH="$p/usr" \
    -DCMAKE_LIBRARY_PATH="$p/usr/lib/$gpu_arch" \
    -DZLIB_INCLUDE_DIR="$zinc" -DZLIB_LIBRARY="$zlib" \
    -DPNG_PNG_INCLUDE_DIR="$pinc" -DPNG_LIBRARY="$plib" \
    -DCMAKE_BUILD_RPATH="$rpath" \
    -DCMAKE_EXE_LINKER_FLAGS="-Wl,--disable-new-dtags" "$@"
}

# gpu_header_deps BUILD: every header the compiler read, one path per line.
gpu_header_deps() {
  local b=$1
  if [[ -f "$b/build.ninja" ]]; then
    ninja -C "$b" -t deps 2>/dev/null | awk '/^    / {print $1}'
  else
    find "$b" -name '*.d' -path '*CMakeFiles*' -exec cat {} + 2>/dev/null | tr ' \\' '\n\n' | grep '^/'
  fi | sort -u
}

# gpu_verify_build BUILD PREFIX: PASS/FAIL per check; returns the number of FAILs.
gpu_verify_build() {
  local b=$1 p=$2 fails=0 deps h hits others line lib path name progs=() libnames
  deps=$(gpu_header_deps "$b")
  if [[ -z "$deps" ]]; then
    echo "FAIL headers: the build recorded no header dependencies (ninja -t deps / *.d)"
    fails=$((fails + 1))
  fi
  for h in oneapi/dnnl/dnnl.h criterion/criterion.h png.h zlib.h; do
    hits=$(grep -E "/${h//./\\.}\$" <<< "$deps" | grep -F "$p/" | head -n 1)
    others=$(grep -E "/${h##*/}\$" <<< "$deps" | grep -vF "$p/" | head -n 1)
    if [[ -n "$hits" && -z "$others" ]]; then
      echo "PASS headers: ${h##*/} read from ${hits}"
    else
      echo "FAIL headers: ${h##*/} read from ${others:-nowhere in the prefix}"
      fails=$((fails + 1))
    fi
  done
  # Any header the compiler took from outside the prefix although the prefix has it.
  others=""
  while read -r line; do
    [[ "$line" == "$p"/* ]] && continue
    [[ "$line" == /usr/include/* && -e "$p$line" ]] && others+=" $line"
  done <<< "$deps"
  if [[ -z "$others" ]]; then
    echo "PASS headers: none of the $(wc -l <<< "$deps") headers read came from /usr where the prefix has one"
  else
    echo "FAIL headers: read from /usr although the prefix has them:$others"
    fails=$((fails + 1))
  fi
  for f in "$b"/cuvae "$b"/test_*; do [[ -x "$f" && -f "$f" ]] && progs+=("$f"); done
  if ((${#progs[@]} == 0)); then
    echo "FAIL libraries: no programs in $b"
    return $((fails + 1))
  fi
  libnames=$(ldd "${progs[@]}" 2>&1)
  for lib in libdnnl.so.2 libcriterion.so.3 libpng16.so.16 libz.so.1 libOpenCL.so.1 libgit2.so.1.5; do
    path=$(awk -v l="$lib" '$1 == l {print $3}' <<< "$libnames" | sort -u)
    if [[ -n "$path" && "$path" != *$'\n'* && "$path" == "$p"/* ]]; then
      echo "PASS libraries: $lib => $path"
    else
      echo "FAIL libraries: $lib => ${path//$'\n'/, }"
      fails=$((fails + 1))
    fi
  done
  # Every library the prefix holds is loaded from it, by every program.
  others=$(awk '$2 == "=>" {print $1, $3}' <<< "$libnames" | sort -u | while read -r name path; do
    if [[ "$path" == "not" ]]; then echo "$name(not found)"; continue; fi
    [[ "$path" == "$p"/* ]] && continue
    for d in $(gpu_libdirs "$p"); do [[ -e "$d/$name" ]] && echo "$name=>$path"; done
  done)
  if [[ -z "$others" ]]; then
    echo "PASS libraries: ${#progs[@]} programs load every library the prefix has from the prefix (no LD_LIBRARY_PATH)"
  else
    echo "FAIL libraries: loaded from outside the prefix or not found: $(echo $others)"
    fails=$((fails + 1))
  fi
  return "$fails"
}

# gpu_compare_models TESTUTIL_C: the models of tests/testutil.c's tu_compare_models table (the
# list test_compare.c and test_cuda_compare.c run), one "NAME<TAB>FLAGS" line each, read from
# the C source so that the GPU check and the tests share one list. Fails, saying so, when the
# table is not found or an entry lacks its two strings.
gpu_compare_models() {
  python3 - "$1" <<'PY'
import re, sys
src = open(sys.argv[1]).read()
src = re.sub(r"/\*.*?\*/|//[^\n]*", "", src, flags=re.S)
m = re.search(r"tu_compare_models\[\]\s*=\s*\{(.*?)\n\};", src, re.S)
if not m:
    sys.exit(f"gpu_compare_models: no tu_compare_models table in {sys.argv[1]}")
entries = re.findall(r'\{((?:[^{}"]|"(?:[^"\\]|\\.)*")*)\}', m.group(1))
if not entries:
    sys.exit("gpu_compare_models: the tu_compare_models table has no entries")
for e in entries:
    fields, cur, seen = [], "", False
    for t in re.finditer(r'"((?:[^"\\]|\\.)*)"|,', e):
        if t.group(0) == ",":
            fields.append(cur if seen else None)
            cur, seen = "", False
        else:
            cur += t.group(1).replace('\\"', '"').replace("\\\\", "\\")
            seen = True
    fields.append(cur if seen else None)
    if len(fields) < 2 or fields[0] is None or fields[1] is None:
        sys.exit(f"gpu_compare_models: an entry without a name and flags: {{{e.strip()}}}")
    print(f"{fields[0]}\t{fields[1]}")
PY
}

# gpu_mnist_head SRC DEST NTRAIN NTEST: DEST gets the first NTRAIN training and NTEST test
# images and labels of the IDX data set in SRC (raw or .gz), uncompressed (all of them where
# SRC has fewer), so that a timed run takes the same time whichever MNIST travelled.
gpu_mnist_head() {
  python3 - "$@" <<'PY'
import gzip, os, struct, sys
src, dest, ntrain, ntest = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
os.makedirs(dest, exist_ok=True)
for split, n in (("train", ntrain), ("t10k", ntest)):
    for kind in ("images-idx3", "labels-idx1"):
        name = f"{split}-{kind}-ubyte"
        path = os.path.join(src, name)
        if os.path.exists(path):
            data = open(path, "rb").read()
        elif os.path.exists(path + ".gz"):
            data = gzip.open(path + ".gz").read()
        else:
            sys.exit(f"gpu_mnist_head: {path}[.gz] is missing")
        if data[:2] != b"\0\0" or data[2] != 0x08:
            sys.exit(f"gpu_mnist_head: {name}: not an IDX file of unsigned bytes")
        ndim = data[3]
        dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
        item = 1
        for d in dims[1:]:
            item *= d
        k = min(n, dims[0])
        head = 4 + 4 * ndim
        with open(os.path.join(dest, name), "wb") as f:
            f.write(data[:4] + struct.pack(">I", k) + data[8:head] + data[head:head + k * item])
PY
}
