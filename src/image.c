/*
 * image.c: grayscale PNG reading and writing through libpng, and image grids;
 * see image.h.
 *
 * libpng reports errors by longjmp. Each libpng session lives in its own
 * small function (write_png_stream, read_png_stream) whose locals are all set
 * before setjmp; anything allocated after setjmp is kept in a png_session
 * owned by the caller, so the error path can free it. The error callback
 * copies libpng's message there and the caller turns it into vae_set_error.
 *
 * Not here: anything but 8-bit gray output.
 */
#define _POSIX_C_SOURCE 200809L
#include "image.h"
#include "font.h"
#include "vae_util.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Largest width or height written or read (libpng's default read limit). */
#define PNG_MAX_SIDE 1000000
/* Largest pixel count read. */
#define PNG_MAX_PIXELS ((uint64_t)1 << 28)

typedef struct {
    char msg[256];      /* libpng's last error message */
    uint8_t *pixels;    /* read: (height, width), allocated after setjmp */
    png_bytep *rows;    /* read: (height) row pointers into pixels */
} png_session;

VAE_NORETURN static void on_png_error(png_structp png, png_const_charp msg)
{
    png_session *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg ? msg : "unknown libpng error");
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg)
{
    /* warnings (e.g. a bad ancillary chunk CRC) do not stop us */
}

uint8_t vae_image_to_u8(float x)
{
    if (!(x > 0.0f)) /* also NaN */
        return 0;
    if (x >= 1.0f)
        return 255;
    return (uint8_t)lrintf(255.0f * x);
}

/* ---- writing -------------------------------------------------------------- */

static int write_png_stream(FILE *fp, const uint8_t *pixels, int width, int height, png_session *s)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, s, on_png_error, on_png_warning);
    if (!png) {
        snprintf(s->msg, sizeof s->msg, "libpng could not create a write struct");
        return -1;
    }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        snprintf(s->msg, sizeof s->msg, "libpng could not create an info struct");
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < height; y++)
        png_write_row(png, pixels + (size_t)y * (size_t)width);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

int vae_png_write_gray(const char *path, const uint8_t *pixels, int width, int height)
{
    if (!path || !*path)
        return vae_set_error("vae_png_write_gray: empty path");
    if (!pixels)
        return vae_set_error("%s: no pixels to write (NULL)", path);
    if (width < 1 || height < 1 || width > PNG_MAX_SIDE || height > PNG_MAX_SIDE)
        return vae_set_error("%s: image size %d x %d is outside 1..%d", path, width, height, PNG_MAX_SIDE);

    png_session s = {{0}, NULL, NULL};
    vae_atomic_file out;
    if (vae_atomic_open(&out, path))
        return -1;
    errno = 0; /* so that a libpng "Write Error" can be told apart from other errors */
    if (write_png_stream(out.f, pixels, width, height, &s)) {
        vae_set_error("%s: writing PNG failed: %s%s%s", path, s.msg, errno ? ": " : "",
                      errno ? strerror(errno) : "");
        vae_atomic_abort(&out);
        return -1;
    }
    return vae_atomic_commit(&out);
}

/* ---- reading -------------------------------------------------------------- */

static int read_png_stream(FILE *fp, png_session *s, int *width, int *height)
{
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, s, on_png_error, on_png_warning);
    if (!png) {
        snprintf(s->msg, sizeof s->msg, "libpng could not create a read struct");
        return -1;
    }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        snprintf(s->msg, sizeof s->msg, "libpng could not create an info struct");
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        return -1;
    }
    png_init_io(png, fp);
    png_set_sig_bytes(png, 8);
    png_set_user_limits(png, PNG_MAX_SIDE, PNG_MAX_SIDE);
    png_read_info(png, info);

    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int bit_depth = png_get_bit_depth(png, info);
    int color_type = png_get_color_type(png, info);
    if ((uint64_t)w * h > PNG_MAX_PIXELS)
        png_error(png, "image has more than 2^28 pixels");
    if (color_type == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (bit_depth == 16)
        png_set_scale_16(png);
    /* Alpha is dropped, also the alpha that expanding a tRNS chunk creates. */
    if ((color_type & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS))
        png_set_strip_alpha(png);
    if (color_type & PNG_COLOR_MASK_COLOR)
        png_set_rgb_to_gray_fixed(png, PNG_ERROR_ACTION_NONE, -1, -1);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_channels(png, info) != 1 || png_get_bit_depth(png, info) != 8 ||
        png_get_rowbytes(png, info) != w)
        png_error(png, "could not convert the image to 8-bit gray");

    s->pixels = vae_calloc((size_t)w * h, 1);
    s->rows = vae_calloc(h, sizeof *s->rows);
    for (png_uint_32 y = 0; y < h; y++)
        s->rows[y] = s->pixels + (size_t)y * w;
    png_read_image(png, s->rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    *width = (int)w;
    *height = (int)h;
    return 0;
}

int vae_png_read_gray(const char *path, uint8_t **pixels, int *width, int *height)
{
    if (!pixels || !width || !height)
        return vae_set_error("vae_png_read_gray: NULL output pointer");
    *pixels = NULL;
    *width = *height = 0;
    if (!path || !*path)
        return vae_set_error("vae_png_read_gray: empty path");
    FILE *fp = vae_fopen_regular(path);
    if (!fp)
        return -1;
    uint8_t sig[8];
    size_t got = fread(sig, 1, sizeof sig, fp);
    if (got != sizeof sig && ferror(fp)) {
        int e = errno;
        fclose(fp);
        return vae_set_error("%s: reading: %s", path, strerror(e));
    }
    if (got != sizeof sig || png_sig_cmp(sig, 0, sizeof sig) != 0) {
        fclose(fp);
        return vae_set_error("%s: not a PNG file (bad signature)", path);
    }
    png_session s = {{0}, NULL, NULL};
    int w = 0, h = 0;
    int rc = read_png_stream(fp, &s, &w, &h);
    vae_free(s.rows);
    if (rc) {
        int truncated = feof(fp);
        vae_free(s.pixels);
        fclose(fp);
        return vae_set_error("%s: invalid PNG: %s%s", path, s.msg, truncated ? " (file truncated)" : "");
    }
    if (fclose(fp) != 0) {
        vae_free(s.pixels);
        return vae_set_error("%s: closing: %s", path, strerror(errno));
    }
    *pixels = s.pixels;
    *width = w;
    *height = h;
    return 0;
}

/* ---- grids ---------------------------------------------------------------- */

int vae_image_grid_write(const char *path, const float *images, int n, int h, int w, int cols)
{
    return vae_image_grid_write_scaled(path, images, n, h, w, cols, 1);
}

/* Text geometry of the labels at a grid scale: block size, padding and one line's height. */
static int label_px(int scale) { return scale >= 2 ? 2 : 1; }
static int label_pad(int scale) { return 3 * label_px(scale); }
static int label_line(int scale) { return VAE_FONT_ROWS * label_px(scale) + 2 * label_pad(scale); }

static int label_max_width(const char *const *labels, int n, int px)
{
    int widest = 0;
    for (int i = 0; labels && i < n; i++)
        if (labels[i] && vae_font_text_width(labels[i], px) > widest)
            widest = vae_font_text_width(labels[i], px);
    return widest;
}

void vae_image_grid_origin(const vae_grid_labels *labels, int rows, int cols, int scale, int *x0, int *y0)
{
    *x0 = *y0 = 0;
    if (!labels)
        return;
    const int px = label_px(scale), widest = label_max_width(labels->row_labels, rows, px);
    if (widest)
        *x0 = widest + 2 * label_pad(scale);
    *y0 = (labels->title ? label_line(scale) : 0) + (label_max_width(labels->col_labels, cols, px) ? label_line(scale) : 0);
}

int vae_image_grid_write_scaled(const char *path, const float *images, int n, int h, int w, int cols, int scale)
{
    return vae_image_grid_write_labelled(path, images, n, h, w, cols, scale, NULL);
}

int vae_image_grid_write_labelled(const char *path, const float *images, int n, int h, int w, int cols, int scale,
                                  const vae_grid_labels *labels)
{
    if (!path || !*path)
        return vae_set_error("vae_image_grid_write: empty path");
    if (!images)
        return vae_set_error("%s: no images to tile (NULL)", path);
    if (n < 1 || h < 1 || w < 1 || cols < 1)
        return vae_set_error("%s: grid needs n, h, w and cols >= 1 (got n=%d h=%d w=%d cols=%d)", path,
                             n, h, w, cols);
    const int64_t b = VAE_GRID_BORDER;
    int64_t rows = ((int64_t)n + cols - 1) / cols;
    if (scale < 1 || scale > 64)
        return vae_set_error("%s: grid scale %d is out of range (1 to 64)", path, scale);
    int64_t gw = (int64_t)cols * (w + b) + b, gh = rows * (h + b) + b;
    int64_t sw = gw * scale, sh = gh * scale;
    int x0 = 0, y0 = 0, px = label_px(scale), pad = label_pad(scale);
    vae_image_grid_origin(labels, (int)(rows < INT32_MAX ? rows : INT32_MAX), cols, scale, &x0, &y0);
    int64_t title_w = labels && labels->title ? vae_font_text_width(labels->title, px) + 2 * pad : 0;
    int64_t W = x0 + sw > title_w ? x0 + sw : title_w, H = y0 + sh;
    if (W > PNG_MAX_SIDE || H > PNG_MAX_SIDE || (uint64_t)W * (uint64_t)H > PNG_MAX_PIXELS)
        return vae_set_error("%s: grid of %lld x %lld pixels is too large (at most %d a side and "
                             "2^28 pixels)", path, (long long)W, (long long)H, PNG_MAX_SIDE);
    uint8_t *canvas = vae_calloc((size_t)W * (size_t)H, 1);
    memset(canvas, labels ? 255 : VAE_GRID_BORDER_VALUE, (size_t)W * (size_t)H); /* the margins white */
    for (int64_t y = 0; y < sh; y++) /* the border, then the tiles, each pixel a scale x scale block */
        memset(canvas + (size_t)(y0 + y) * (size_t)W + (size_t)x0, VAE_GRID_BORDER_VALUE, (size_t)sw);
    for (int k = 0; k < n; k++) {
        int64_t tx = b + (int64_t)(k % cols) * (w + b), ty = b + (int64_t)(k / cols) * (h + b);
        const float *img = images + (size_t)k * (size_t)h * (size_t)w;
        for (int64_t y = 0; y < (int64_t)h * scale; y++) {
            uint8_t *row = canvas + (size_t)(y0 + ty * scale + y) * (size_t)W + (size_t)(x0 + tx * scale);
            for (int64_t x = 0; x < (int64_t)w * scale; x++)
                row[x] = vae_image_to_u8(img[(size_t)(y / scale) * (size_t)w + (size_t)(x / scale)]);
        }
    }
    if (labels) {
        const int line = label_line(scale), glyph_h = VAE_FONT_ROWS * px;
        if (labels->title)
            vae_font_draw(canvas, (int)W, (int)H, pad, pad, labels->title, px, 0);
        int widest = label_max_width(labels->col_labels, cols, px), pitch = (int)((w + b) * scale), every = 1;
        while (widest && every * pitch < widest + 2 * pad)
            every++;
        for (int c = 0; widest && c < cols; c += every) {
            const char *s = labels->col_labels[c];
            int cx = x0 + (int)((b + (int64_t)c * (w + b)) * scale + (int64_t)w * scale / 2);
            if (s)
                vae_font_draw(canvas, (int)W, (int)H, cx - vae_font_text_width(s, px) / 2, y0 - line + pad, s, px, 0);
        }
        for (int r = 0; labels->row_labels && r < rows; r++) {
            const char *s = labels->row_labels[r];
            int cy = y0 + (int)((b + (int64_t)r * (h + b)) * scale + (int64_t)h * scale / 2);
            if (s)
                vae_font_draw(canvas, (int)W, (int)H, x0 - pad - vae_font_text_width(s, px), cy - glyph_h / 2, s, px,
                              labels->row_muted && labels->row_muted[r] ? 150 : 0);
        }
    }
    int rc = vae_png_write_gray(path, canvas, (int)W, (int)H);
    vae_free(canvas);
    return rc;
}
