/*
 * font.h: text in the PNG pictures (row and column labels, titles) drawn from a
 * built-in 5 x 7 bitmap font of printable ASCII, so labels need no font
 * files and come out the same on every machine.
 *
 * A glyph is 5 columns by 7 rows above the baseline and one below (g, j, p, q,
 * y and the comma descend into it), drawn as px x px blocks; characters advance
 * VAE_FONT_ADVANCE * px pixels (one blank column between them). Characters
 * outside ' '..'~' draw as '?'. Not here: the grid layout around the labels
 * (image.c).
 */
#ifndef VAE_FONT_H
#define VAE_FONT_H

#include <stdint.h>

#define VAE_FONT_COLS 5
#define VAE_FONT_ROWS 8 /* 7 above the baseline, 1 below it */
#define VAE_FONT_ADVANCE 6 /* glyph width plus one blank column */

/* Whether pixel (x, y) of the glyph of ch is ink, 0 <= x < VAE_FONT_COLS, 0 <= y < VAE_FONT_ROWS. */
int vae_font_ink(char ch, int x, int y);

/* Width in pixels of s drawn at block size px (the last character's blank column excluded). */
int vae_font_text_width(const char *s, int px);

/* Draw s with its top-left corner at (x, y) into canvas (height, width) of 8-bit gray: ink
 * pixels become value, the rest stay; pixels outside the canvas are clipped. */
void vae_font_draw(uint8_t *canvas /* (height, width) */, int width, int height, int x, int y, const char *s, int px,
                   uint8_t value);

#endif /* VAE_FONT_H */
