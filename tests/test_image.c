/*
 * test_image.c: PNG output and input and image grids (src/image.c).
 *
 * Files we write are read back with libpng directly (not through our reader)
 * and compared pixel by pixel; our reader is checked on files libpng writes
 * here in other formats (RGB, palette, 16-bit, 1-bit, alpha, interlaced);
 * bad paths and bad files must fail with a message, never crash.
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>

#include <math.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "testutil.h"
#include "vae_util.h"

/* ---- helpers -------------------------------------------------------------- */

/* Read path with libpng's simplified API as 8-bit gray, no conversion
 * options: the reference reader. Returns malloc'd (height, width). */
static uint8_t *ref_read(const char *path, int *width, int *height, png_uint_32 *format)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    cr_assert(png_image_begin_read_from_file(&img, path), "libpng: %s", img.message);
    *format = img.format;
    img.format = PNG_FORMAT_GRAY;
    uint8_t *buf = malloc(PNG_IMAGE_SIZE(img));
    cr_assert(buf);
    cr_assert(png_image_finish_read(&img, NULL, buf, 0, NULL), "libpng: %s", img.message);
    *width = (int)img.width;
    *height = (int)img.height;
    return buf;
}

/* Write a PNG in any format with libpng's classic API (for reader tests).
 * rows: height rows of rowbytes bytes. */
static void ref_write_trns(const char *path, int width, int height, int bit_depth, int color_type,
                           int interlace, const uint8_t *data, size_t rowbytes, const png_color *palette,
                           int n_palette, const png_byte *trans, int n_trans, const png_color_16 *trans_color)
{
    FILE *fp = fopen(path, "wb");
    cr_assert(fp);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    cr_assert(png && info);
    if (setjmp(png_jmpbuf(png)))
        cr_assert_fail("libpng failed writing the reference file");
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, bit_depth, color_type, interlace,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (palette)
        png_set_PLTE(png, info, palette, n_palette);
    if (trans || trans_color)
        png_set_tRNS(png, info, trans, n_trans, trans_color);
    png_write_info(png, info);
    png_bytep *rows = malloc((size_t)height * sizeof *rows);
    for (int y = 0; y < height; y++)
        rows[y] = (png_bytep)(data + (size_t)y * rowbytes);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    cr_assert_eq(fclose(fp), 0);
}

static void ref_write(const char *path, int width, int height, int bit_depth, int color_type,
                      int interlace, const uint8_t *data, size_t rowbytes, const png_color *palette,
                      int n_palette)
{
    ref_write_trns(path, width, height, bit_depth, color_type, interlace, data, rowbytes, palette,
                   n_palette, NULL, 0, NULL);
}

static void read_ours(const char *path, uint8_t **px, int *w, int *h)
{
    cr_assert_eq(vae_png_read_gray(path, px, w, h), 0, "%s", vae_last_error());
}

/* ---- writing -------------------------------------------------------------- */

Test(image, gradient_round_trip)
{
    const char *dir = tu_tmpdir();
    char path[512], tmp[600];
    tu_join(path, sizeof path, dir, "grad.png");
    const int w = 37, h = 23;
    uint8_t px[23 * 37];
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            px[y * w + x] = (uint8_t)((x * 7 + y * 11) & 255);
    cr_assert_eq(vae_png_write_gray(path, px, w, h), 0, "%s", vae_last_error());
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    cr_assert(!tu_exists(tmp), "the .tmp file must be gone");

    int rw, rh;
    png_uint_32 format;
    uint8_t *ref = ref_read(path, &rw, &rh, &format);
    cr_assert_eq(rw, w);
    cr_assert_eq(rh, h);
    cr_assert_eq(format, PNG_FORMAT_GRAY, "stored as 8-bit gray");
    for (int k = 0; k < w * h; k++)
        cr_assert_eq(ref[k], px[k], "pixel (%d, %d)", k % w, k / w);
    free(ref);

    uint8_t *ours;
    read_ours(path, &ours, &rw, &rh);
    cr_assert_eq(rw, w);
    cr_assert_eq(rh, h);
    cr_assert_eq(memcmp(ours, px, sizeof px), 0);
    vae_free(ours);
}

Test(image, one_pixel_and_overwrite)
{
    char path[512];
    tu_join(path, sizeof path, tu_tmpdir(), "one.png");
    uint8_t a = 0, b = 255;
    cr_assert_eq(vae_png_write_gray(path, &a, 1, 1), 0, "%s", vae_last_error());
    cr_assert_eq(vae_png_write_gray(path, &b, 1, 1), 0, "%s", vae_last_error());
    uint8_t *px;
    int w, h;
    read_ours(path, &px, &w, &h);
    cr_assert_eq(w, 1);
    cr_assert_eq(h, 1);
    cr_assert_eq(px[0], 255);
    vae_free(px);
}

Test(image, float_to_pixel)
{
    cr_assert_eq(vae_image_to_u8(0.0f), 0);
    cr_assert_eq(vae_image_to_u8(1.0f), 255);
    cr_assert_eq(vae_image_to_u8(-3.0f), 0);
    cr_assert_eq(vae_image_to_u8(7.0f), 255);
    cr_assert_eq(vae_image_to_u8(NAN), 0);
    cr_assert_eq(vae_image_to_u8(INFINITY), 255);
    cr_assert_eq(vae_image_to_u8(-INFINITY), 0);
    cr_assert_eq(vae_image_to_u8(0.5f), 128); /* 127.5 rounds to even */
    cr_assert_eq(vae_image_to_u8(1.0f / 255.0f), 1);
    cr_assert_eq(vae_image_to_u8(0.499f / 255.0f), 0);
    for (int v = 0; v <= 255; v++)
        cr_assert_eq(vae_image_to_u8((float)v / 255.0f), v);
}

Test(image, grid_geometry)
{
    const char *dir = tu_tmpdir();
    char path[512];
    tu_join(path, sizeof path, dir, "grid.png");
    const int n = 5, h = 3, w = 4, cols = 3, rows = 2;
    float imgs[5 * 3 * 4];
    tu_fill_uniform(imgs, sizeof imgs / sizeof imgs[0], 7, -0.2f, 1.2f); /* some need clamping */
    imgs[0] = NAN;
    cr_assert_eq(vae_image_grid_write(path, imgs, n, h, w, cols), 0, "%s", vae_last_error());

    int gw, gh;
    png_uint_32 format;
    uint8_t *g = ref_read(path, &gw, &gh, &format);
    cr_assert_eq(gw, cols * (w + 2) + 2);
    cr_assert_eq(gh, rows * (h + 2) + 2);
    cr_assert_eq(format, PNG_FORMAT_GRAY);
    /* which image covers each pixel: -1 for border and empty cells */
    for (int y = 0; y < gh; y++)
        for (int x = 0; x < gw; x++) {
            int cx = (x - 2) / (w + 2), ox = (x - 2) % (w + 2);
            int cy = (y - 2) / (h + 2), oy = (y - 2) % (h + 2);
            int k = -1;
            if (x >= 2 && y >= 2 && ox < w && oy < h && cx < cols && cy < rows)
                k = cy * cols + cx;
            uint8_t got = g[y * gw + x];
            if (k < 0 || k >= n) {
                cr_assert_eq(got, 64, "border/empty pixel (%d, %d) is %d", x, y, got);
            } else {
                float v = imgs[k * h * w + oy * w + ox];
                float c = isnan(v) ? 0.0f : v < 0 ? 0.0f : v > 1 ? 1.0f : v;
                uint8_t want = (uint8_t)lrintf(255.0f * c);
                cr_assert_eq(got, want, "image %d pixel (%d, %d): got %d want %d (x=%g)", k, ox, oy, got,
                             want, v);
            }
        }
    free(g);
}

Test(image, grid_single_and_wide)
{
    char path[512];
    tu_join(path, sizeof path, tu_tmpdir(), "g.png");
    float one[2 * 2] = {0, 1, 1, 0};
    cr_assert_eq(vae_image_grid_write(path, one, 1, 2, 2, 1), 0, "%s", vae_last_error());
    uint8_t *px;
    int w, h;
    read_ours(path, &px, &w, &h);
    cr_assert_eq(w, 6);
    cr_assert_eq(h, 6);
    cr_assert_eq(px[2 * 6 + 2], 0);
    cr_assert_eq(px[2 * 6 + 3], 255);
    cr_assert_eq(px[3 * 6 + 2], 255);
    cr_assert_eq(px[3 * 6 + 3], 0);
    vae_free(px);
    /* more columns than images: the extra cells are border-coloured */
    cr_assert_eq(vae_image_grid_write(path, one, 1, 2, 2, 4), 0, "%s", vae_last_error());
    read_ours(path, &px, &w, &h);
    cr_assert_eq(w, 4 * 4 + 2);
    cr_assert_eq(h, 6);
    cr_assert_eq(px[3 * w + 10], 64);
    vae_free(px);
}

Test(image, bad_arguments)
{
    char path[512];
    tu_join(path, sizeof path, tu_tmpdir(), "bad.png");
    uint8_t px[4] = {0};
    float f[4] = {0};
    cr_assert_eq(vae_png_write_gray(path, px, 0, 1), -1);
    cr_assert(strstr(vae_last_error(), path), "%s", vae_last_error());
    cr_assert_eq(vae_png_write_gray(path, px, 1, -1), -1);
    cr_assert_eq(vae_png_write_gray(path, NULL, 1, 1), -1);
    cr_assert_eq(vae_png_write_gray(NULL, px, 1, 1), -1);
    cr_assert_eq(vae_png_write_gray(path, px, 2000000, 1), -1);
    cr_assert_eq(vae_image_grid_write(path, f, 0, 2, 2, 1), -1);
    cr_assert(strstr(vae_last_error(), "n=0"), "%s", vae_last_error());
    cr_assert_eq(vae_image_grid_write(path, f, 1, 2, 2, 0), -1);
    cr_assert_eq(vae_image_grid_write(path, NULL, 1, 2, 2, 1), -1);
    cr_assert_eq(vae_image_grid_write(path, f, 1, 1, 600000, 2), -1);
    cr_assert(strstr(vae_last_error(), "too large"), "%s", vae_last_error());
    cr_assert(!tu_exists(path));
    uint8_t *out = (uint8_t *)1;
    int w = 5, h = 5;
    cr_assert_eq(vae_png_read_gray(NULL, &out, &w, &h), -1);
    cr_assert_null(out);
    cr_assert_eq(vae_png_read_gray(path, NULL, &w, &h), -1);
}

Test(image, unwritable_path)
{
    const char *dir = tu_tmpdir();
    char path[512];
    uint8_t px[4] = {1, 2, 3, 4};
    tu_join(path, sizeof path, dir, "no/such/dir/x.png");
    cr_assert_eq(vae_png_write_gray(path, px, 2, 2), -1);
    cr_assert_eq(strncmp(vae_last_error(), path, strlen(path)), 0, "%s", vae_last_error());
    cr_assert(strstr(vae_last_error(), "No such file"), "%s", vae_last_error());
    float f[4] = {0};
    cr_assert_eq(vae_image_grid_write(path, f, 1, 2, 2, 1), -1);
    cr_assert(strstr(vae_last_error(), path), "%s", vae_last_error());

    /* the destination is a directory: the rename fails and the .tmp goes */
    char tmp[600];
    tu_join(path, sizeof path, dir, "isdir.png");
    cr_assert_eq(vae_mkdir_p(path), 0);
    cr_assert_eq(vae_png_write_gray(path, px, 2, 2), -1);
    cr_assert(strstr(vae_last_error(), "rename"), "%s", vae_last_error());
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    cr_assert(!tu_exists(tmp));
}

/* A full disk: "<path>.tmp" is a symlink to /dev/full, so every write fails
 * with ENOSPC. A large image fails inside libpng ("Write Error"), a small one
 * when the stdio buffer is flushed; both must come back as messages, and the
 * .tmp must be removed. */
Test(image, write_error_full_disk)
{
    struct stat sb;
    if (stat("/dev/full", &sb) != 0)
        cr_skip_test("/dev/full is not available");
    char path[512], tmp[600];
    tu_join(path, sizeof path, tu_tmpdir(), "full.png");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    const int side = 512;
    uint8_t *px = vae_calloc((size_t)side * side, 1);
    uint64_t s = 12345;
    for (int k = 0; k < side * side; k++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        px[k] = (uint8_t)(s >> 56); /* incompressible */
    }
    for (int big = 1; big >= 0; big--) {
        cr_assert_eq(symlink("/dev/full", tmp), 0);
        int n = big ? side : 2;
        cr_assert_eq(vae_png_write_gray(path, px, n, n), -1, "writing to a full disk must fail");
        const char *msg = vae_last_error();
        cr_assert_eq(strncmp(msg, path, strlen(path)) == 0 || strncmp(msg, tmp, strlen(tmp)) == 0, 1,
                     "%s", msg);
        cr_assert(strstr(msg, "No space left"), "%s", msg);
        if (big)
            cr_assert(strstr(msg, "Write Error"), "%s", msg);
        cr_assert_eq(lstat(tmp, &sb), -1, "the .tmp link must be removed");
        cr_assert(!tu_exists(path));
    }
    vae_free(px);
}

/* ---- reading -------------------------------------------------------------- */

Test(image, read_rejects_non_png)
{
    const char *dir = tu_tmpdir();
    char path[512];
    tu_join(path, sizeof path, dir, "text.png");
    const char text[] = "this is not a PNG file at all\n";
    tu_write_file(path, text, sizeof text - 1);
    uint8_t *px = (uint8_t *)1;
    int w = 7, h = 7;
    cr_assert_eq(vae_png_read_gray(path, &px, &w, &h), -1);
    cr_assert_eq(strncmp(vae_last_error(), path, strlen(path)), 0, "%s", vae_last_error());
    cr_assert(strstr(vae_last_error(), "not a PNG"), "%s", vae_last_error());
    cr_assert_null(px);
    cr_assert_eq(w, 0);
    cr_assert_eq(h, 0);

    tu_write_file(path, "", 0);
    cr_assert_eq(vae_png_read_gray(path, &px, &w, &h), -1);
    cr_assert(strstr(vae_last_error(), "not a PNG"), "%s", vae_last_error());

    tu_join(path, sizeof path, dir, "missing.png");
    cr_assert_eq(vae_png_read_gray(path, &px, &w, &h), -1);
    cr_assert(strstr(vae_last_error(), "cannot open"), "%s", vae_last_error());

    cr_assert_eq(vae_png_read_gray(dir, &px, &w, &h), -1);
    cr_assert(strstr(vae_last_error(), dir), "%s", vae_last_error());
}

/* Every prefix of a PNG, and a corrupted byte in the image data, fail cleanly. */
Test(image, read_rejects_truncated_and_corrupt)
{
    const char *dir = tu_tmpdir();
    char good[512], bad[512];
    tu_join(good, sizeof good, dir, "good.png");
    tu_join(bad, sizeof bad, dir, "bad.png");
    uint8_t px[9 * 5];
    for (int k = 0; k < 45; k++)
        px[k] = (uint8_t)(k * 5);
    cr_assert_eq(vae_png_write_gray(good, px, 9, 5), 0, "%s", vae_last_error());
    size_t len;
    uint8_t *buf = tu_read_file(good, &len);
    cr_assert(len > 50);
    for (size_t n = 0; n < len; n++) {
        tu_write_file(bad, buf, n);
        uint8_t *out = (uint8_t *)1;
        int w, h;
        cr_assert_eq(vae_png_read_gray(bad, &out, &w, &h), -1, "prefix of %zu bytes should fail", n);
        cr_assert_eq(strncmp(vae_last_error(), bad, strlen(bad)), 0, "%s", vae_last_error());
        cr_assert_null(out);
    }
    /* flip a byte inside the IDAT chunk: the CRC check must catch it */
    uint8_t *idat = NULL;
    for (size_t k = 8; k + 4 < len; k++)
        if (memcmp(buf + k, "IDAT", 4) == 0) {
            idat = buf + k;
            break;
        }
    cr_assert(idat);
    idat[6] ^= 0x55;
    tu_write_file(bad, buf, len);
    uint8_t *out;
    int w, h;
    cr_assert_eq(vae_png_read_gray(bad, &out, &w, &h), -1);
    cr_assert(strstr(vae_last_error(), "invalid PNG"), "%s", vae_last_error());
    free(buf);
}

Test(image, read_converts_other_formats)
{
    const char *dir = tu_tmpdir();
    char path[512];
    tu_join(path, sizeof path, dir, "fmt.png");
    const int w = 6, h = 4;
    uint8_t want[6 * 4];
    for (int k = 0; k < w * h; k++)
        want[k] = (uint8_t)(k * 11);
    uint8_t *px;
    int rw, rh;

    /* RGB with R = G = B: gray is exactly that value */
    uint8_t rgb[6 * 4 * 3];
    for (int k = 0; k < w * h; k++)
        rgb[3 * k] = rgb[3 * k + 1] = rgb[3 * k + 2] = want[k];
    ref_write(path, w, h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, rgb, (size_t)w * 3, NULL, 0);
    read_ours(path, &px, &rw, &rh);
    cr_assert_eq(rw, w);
    cr_assert_eq(rh, h);
    cr_assert_eq(memcmp(px, want, sizeof want), 0, "RGB gray");
    vae_free(px);

    /* pure red, green, blue: the luma weights */
    uint8_t prim[3 * 3] = {255, 0, 0, 0, 255, 0, 0, 0, 255};
    ref_write(path, 3, 1, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, prim, 9, NULL, 0);
    read_ours(path, &px, &rw, &rh);
    cr_assert(abs(px[0] - 54) <= 1, "red -> %d", px[0]);    /* 0.2126 * 255 */
    cr_assert(abs(px[1] - 182) <= 1, "green -> %d", px[1]); /* 0.7152 * 255 */
    cr_assert(abs(px[2] - 18) <= 1, "blue -> %d", px[2]);   /* 0.0722 * 255 */
    vae_free(px);

    /* RGBA: alpha dropped */
    uint8_t rgba[6 * 4 * 4];
    for (int k = 0; k < w * h; k++) {
        rgba[4 * k] = rgba[4 * k + 1] = rgba[4 * k + 2] = want[k];
        rgba[4 * k + 3] = (uint8_t)(255 - k);
    }
    ref_write(path, w, h, 8, PNG_COLOR_TYPE_RGBA, PNG_INTERLACE_NONE, rgba, (size_t)w * 4, NULL, 0);
    read_ours(path, &px, &rw, &rh);
    cr_assert_eq(memcmp(px, want, sizeof want), 0, "RGBA gray");
    vae_free(px);

    /* gray + alpha */
    uint8_t ga[6 * 4 * 2];
    for (int k = 0; k < w * h; k++) {
        ga[2 * k] = want[k];
        ga[2 * k + 1] = 17;
    }
    ref_write(path, w, h, 8, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_INTERLACE_NONE, ga, (size_t)w * 2, NULL, 0);
    read_ours(path, &px, &rw, &rh);
    cr_assert_eq(memcmp(px, want, sizeof want), 0, "gray+alpha");
    vae_free(px);

    /* 16-bit gray, big-endian samples v * 257: scaled back to v */
    uint8_t g16[6 * 4 * 2];
    for (int k = 0; k < w * h; k++)
        g16[2 * k] = g16[2 * k + 1] = want[k];
    ref_write(path, w, h, 16, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, g16, (size_t)w * 2, NULL, 0);
    read_ours(path, &px, &rw, &rh);
    cr_assert_eq(memcmp(px, want, sizeof want), 0, "16-bit gray");
    vae_free(px);

    /* palette of grays */
    png_color pal[256];
    for (int k = 0; k < 256; k++)
        pal[k].red = pal[k].green = pal[k].blue = (png_byte)(255 - k);
    uint8_t idx[6 * 4];
    for (int k = 0; k < w * h; k++)
        idx[k] = (uint8_t)(255 - want[k]);
    ref_write(path, w, h, 8, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE, idx, (size_t)w, pal, 256);
    read_ours(path, &px, &rw, &rh);
    cr_assert_eq(memcmp(px, want, sizeof want), 0, "palette");
    vae_free(px);

    /* palette and 8-bit gray with a tRNS chunk: the transparency is dropped */
    png_byte trans[3] = {0, 128, 255};
    ref_write_trns(path, w, h, 8, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE, idx, (size_t)w, pal, 256,
                   trans, 3, NULL);
    read_ours(path, &px, &rw, &rh);
    cr_assert_eq(memcmp(px, want, sizeof want), 0, "palette + tRNS");
    vae_free(px);
    png_color_16 key = {0};
    key.gray = want[3];
    ref_write_trns(path, w, h, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, want, (size_t)w, NULL, 0, NULL, 0,
                   &key);
    read_ours(path, &px, &rw, &rh);
    cr_assert_eq(memcmp(px, want, sizeof want), 0, "gray + tRNS");
    vae_free(px);

    /* 1-bit gray: 0 -> 0, 1 -> 255 */
    uint8_t bits[4] = {0xA5, 0xF0, 0x0F, 0xFF}; /* rows of 8 pixels, w = 8 */
    ref_write(path, 8, 4, 1, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, bits, 1, NULL, 0);
    read_ours(path, &px, &rw, &rh);
    cr_assert_eq(rw, 8);
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 8; x++)
            cr_assert_eq(px[y * 8 + x], (bits[y] >> (7 - x)) & 1 ? 255 : 0, "1-bit (%d, %d)", x, y);
    vae_free(px);

    /* interlaced 8-bit gray */
    ref_write(path, w, h, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_ADAM7, want, (size_t)w, NULL, 0);
    read_ours(path, &px, &rw, &rh);
    cr_assert_eq(memcmp(px, want, sizeof want), 0, "interlaced");
    vae_free(px);
}

/* ---- labels (font.h, vae_image_grid_write_labelled) ------------------------------------ */

#include "font.h"

Test(labels, glyphs_and_widths)
{
    static const char *one[VAE_FONT_ROWS] = {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###.", "....."};
    for (int y = 0; y < VAE_FONT_ROWS; y++)
        for (int x = 0; x < VAE_FONT_COLS; x++)
            cr_expect_eq(vae_font_ink('1', x, y), one[y][x] == '#', "'1' at (%d, %d)", x, y);
    for (int y = 0; y < VAE_FONT_ROWS; y++)
        for (int x = 0; x < VAE_FONT_COLS; x++) {
            cr_expect_eq(vae_font_ink(' ', x, y), 0);
            cr_expect_eq(vae_font_ink('\t', x, y), vae_font_ink('?', x, y), "a control character draws as '?'");
        }
    for (int c = '!'; c <= '~'; c++) { /* every printable character has ink */
        int ink = 0;
        for (int y = 0; y < VAE_FONT_ROWS; y++)
            for (int x = 0; x < VAE_FONT_COLS; x++)
                ink += vae_font_ink((char)c, x, y);
        cr_expect(ink > 0, "'%c' draws nothing", c);
    }
    cr_expect_eq(vae_font_text_width("", 2), 0);
    cr_expect_eq(vae_font_text_width("z1", 1), 11);
    cr_expect_eq(vae_font_text_width("z1", 2), 22);
    uint8_t canvas[4 * 4];
    memset(canvas, 255, sizeof canvas);
    vae_font_draw(canvas, 4, 4, -2, -1, "1", 1, 0); /* clipped at every edge: no write outside */
    cr_expect_eq(canvas[0], 0, "the stem of '1' (glyph column 2, row 1) lands on (0, 0)");
    cr_expect_eq(canvas[1], 255);
}

/* A labelled grid: the grid unchanged at its origin, each label's exact pixels where it belongs. */
Test(labels, grid_sits_unchanged_beside_its_labels)
{
    const char *dir = tu_tmpdir();
    float img[6 * 4 * 12]; /* six 4 x 12 images */
    for (int i = 0; i < 6 * 48; i++)
        img[i] = (float)((i * 37) % 11) / 10.0f;
    char plain[1024], labelled[1024];
    snprintf(plain, sizeof plain, "%s/plain.png", dir);
    snprintf(labelled, sizeof labelled, "%s/labelled.png", dir);
    const char *rows[2] = {"z1 KL 2.50", "z2 KL 0.00 inactive"}, *cols[3] = {"-3", NULL, "+3"};
    const uint8_t muted[2] = {0, 1};
    vae_grid_labels l = {.title = "a title", .col_labels = cols, .row_labels = rows, .row_muted = muted};
    const int scale = 3; /* columns 42 pixels apart: room for every column label */
    cr_assert_eq(vae_image_grid_write_scaled(plain, img, 6, 4, 12, 3, scale), 0, "%s", vae_last_error());
    cr_assert_eq(vae_image_grid_write_labelled(labelled, img, 6, 4, 12, 3, scale, &l), 0, "%s", vae_last_error());
    uint8_t *p, *q;
    int pw, ph, qw, qh, x0, y0;
    cr_assert_eq(vae_png_read_gray(plain, &p, &pw, &ph), 0, "%s", vae_last_error());
    cr_assert_eq(vae_png_read_gray(labelled, &q, &qw, &qh), 0, "%s", vae_last_error());
    vae_image_grid_origin(&l, 2, 3, scale, &x0, &y0);
    const int px = 2, pad = 3 * px, line = VAE_FONT_ROWS * px + 2 * pad;
    cr_expect_eq(x0, vae_font_text_width(rows[1], px) + 2 * pad, "the row labels' margin fits the widest");
    cr_expect_eq(y0, 2 * line, "a title line and a column-label line");
    cr_expect_eq(qh, y0 + ph);
    int tx, ty;
    tu_grid_origin(q, qw, qh, &tx, &ty);
    cr_expect(tx == x0 && ty == y0, "the tests' origin finder: (%d, %d), not (%d, %d)", tx, ty, x0, y0);
    for (int y = 0; y < ph; y++)
        cr_assert(memcmp(q + (size_t)(y0 + y) * qw + x0, p + (size_t)y * pw, (size_t)pw) == 0,
                  "grid row %d differs from the plain grid's", y);
    /* each label, drawn alone on white where the layout puts it, matches the file's pixels */
    uint8_t *want = malloc((size_t)qw * qh);
    memset(want, 255, (size_t)qw * qh);
    vae_font_draw(want, qw, qh, pad, pad, l.title, px, 0);
    for (int r = 0; r < 2; r++) {
        int cy = y0 + (VAE_GRID_BORDER + r * (4 + VAE_GRID_BORDER)) * scale + 4 * scale / 2;
        vae_font_draw(want, qw, qh, x0 - pad - vae_font_text_width(rows[r], px), cy - VAE_FONT_ROWS * px / 2, rows[r],
                      px, r ? 150 : 0);
    }
    for (int c = 0; c < 3; c += 2) {
        int cx = x0 + (VAE_GRID_BORDER + c * (12 + VAE_GRID_BORDER)) * scale + 12 * scale / 2;
        vae_font_draw(want, qw, qh, cx - vae_font_text_width(cols[c], px) / 2, y0 - line + pad, cols[c], px, 0);
    }
    int gray = 0;
    for (int y = 0; y < qh; y++)
        for (int x = 0; x < qw; x++)
            if (x < x0 || y < y0 || x >= x0 + pw) {
                cr_assert_eq(q[(size_t)y * qw + x], want[(size_t)y * qw + x], "margin pixel (%d, %d)", x, y);
                gray += q[(size_t)y * qw + x] == 150;
            }
    cr_expect(gray > 0, "the muted row's label is gray");
    free(want);
    vae_free(p);
    vae_free(q);
}

/* Column labels wider than their columns are thinned, never drawn over each other. */
Test(labels, wide_column_labels_are_thinned)
{
    const char *dir = tu_tmpdir();
    float img[24 * 4] = {0};
    char path[1024];
    snprintf(path, sizeof path, "%s/thin.png", dir);
    const char *cols[24];
    for (int c = 0; c < 24; c++)
        cols[c] = c % 2 ? "-1.15" : "+0.67";
    vae_grid_labels l = {.col_labels = cols};
    cr_assert_eq(vae_image_grid_write_labelled(path, img, 24, 2, 2, 24, 1, &l), 0, "%s", vae_last_error());
    uint8_t *q;
    int w, h;
    cr_assert_eq(vae_png_read_gray(path, &q, &w, &h), 0, "%s", vae_last_error());
    /* the label line: clusters of ink apart by more than the blanks inside a label; fewer labels
     * than columns, each no wider than one label (labels drawn over each other would merge) */
    int labels = 0, widest = 0, start = -1, last_ink = -100;
    for (int x = 0; x <= w; x++) {
        int ink = 0;
        for (int y = 0; x < w && y < VAE_FONT_ROWS + 6; y++)
            ink |= q[(size_t)y * w + x] == 0;
        if (ink && x - last_ink > 4) { /* a new label: close the last */
            if (start >= 0 && last_ink - start + 1 > widest)
                widest = last_ink - start + 1;
            start = x;
            labels++;
        }
        if (ink)
            last_ink = x;
        if (x == w && start >= 0 && last_ink - start + 1 > widest)
            widest = last_ink - start + 1;
    }
    cr_expect(labels >= 2 && labels < 24, "%d labels drawn over 24 columns 4 pixels apart", labels);
    cr_expect(widest <= vae_font_text_width("-1.96", 1), "a label %d pixels wide: two drawn over each other", widest);
    vae_free(q);
}
