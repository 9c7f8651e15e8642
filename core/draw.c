/* Boxes, labels and PNG encoding (see core/draw.h). */
#include "core/draw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/reply.h"

#define STBI_WRITE_NO_STDIO
#define STB_IMAGE_WRITE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

#define DRAW_GLYPH_W 5
#define DRAW_GLYPH_H 7

/* One character: 7 rows of 5 pixels, the leftmost in bit 4. */
struct draw_glyph {
    char c;
    unsigned char rows[DRAW_GLYPH_H];
};

/* A hand-drawn font: digits, lower case and what a label may hold. */
static const struct draw_glyph draw_font[] = {
    { '0', { 0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e } },
    { '1', { 0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e } },
    { '2', { 0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f } },
    { '3', { 0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e } },
    { '4', { 0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02 } },
    { '5', { 0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e } },
    { '6', { 0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e } },
    { '7', { 0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08 } },
    { '8', { 0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e } },
    { '9', { 0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c } },
    { '.', { 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c } },
    { '-', { 0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00 } },
    { '%', { 0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03 } },
    { ':', { 0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00 } },
    { '_', { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1f } },
    { '?', { 0x0e, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04 } },
    { 'a', { 0x00, 0x00, 0x0e, 0x01, 0x0f, 0x11, 0x0f } },
    { 'b', { 0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1e } },
    { 'c', { 0x00, 0x00, 0x0e, 0x10, 0x10, 0x11, 0x0e } },
    { 'd', { 0x01, 0x01, 0x0d, 0x13, 0x11, 0x11, 0x0f } },
    { 'e', { 0x00, 0x00, 0x0e, 0x11, 0x1f, 0x10, 0x0e } },
    { 'f', { 0x06, 0x09, 0x08, 0x1c, 0x08, 0x08, 0x08 } },
    { 'g', { 0x00, 0x0f, 0x11, 0x11, 0x0f, 0x01, 0x0e } },
    { 'h', { 0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11 } },
    { 'i', { 0x04, 0x00, 0x0c, 0x04, 0x04, 0x04, 0x0e } },
    { 'j', { 0x02, 0x00, 0x06, 0x02, 0x02, 0x12, 0x0c } },
    { 'k', { 0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12 } },
    { 'l', { 0x0c, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e } },
    { 'm', { 0x00, 0x00, 0x1a, 0x15, 0x15, 0x11, 0x11 } },
    { 'n', { 0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11 } },
    { 'o', { 0x00, 0x00, 0x0e, 0x11, 0x11, 0x11, 0x0e } },
    { 'p', { 0x00, 0x00, 0x1e, 0x11, 0x1e, 0x10, 0x10 } },
    { 'q', { 0x00, 0x00, 0x0d, 0x13, 0x0f, 0x01, 0x01 } },
    { 'r', { 0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10 } },
    { 's', { 0x00, 0x00, 0x0e, 0x10, 0x0e, 0x01, 0x1e } },
    { 't', { 0x08, 0x08, 0x1c, 0x08, 0x08, 0x09, 0x06 } },
    { 'u', { 0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0d } },
    { 'v', { 0x00, 0x00, 0x11, 0x11, 0x11, 0x0a, 0x04 } },
    { 'w', { 0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0a } },
    { 'x', { 0x00, 0x00, 0x11, 0x0a, 0x04, 0x0a, 0x11 } },
    { 'y', { 0x00, 0x00, 0x11, 0x11, 0x0f, 0x01, 0x0e } },
    { 'z', { 0x00, 0x00, 0x1f, 0x02, 0x04, 0x08, 0x1f } },
};

static const unsigned char draw_box[3] = { 40, 220, 60 };
static const unsigned char draw_ink[3] = { 0, 0, 0 };

/* Glyph of `c` (upper case drawn as lower case); '?' for the unknown. */
static const unsigned char *glyph_rows(char c)
{
    const unsigned char *unknown = NULL;

    if (c >= 'A' && c <= 'Z') {
        c = (char)(c - 'A' + 'a');
    }
    for (size_t i = 0; i < sizeof(draw_font) / sizeof(draw_font[0]); i++) {
        if (draw_font[i].c == c) {
            return draw_font[i].rows;
        }
        if (draw_font[i].c == '?') {
            unknown = draw_font[i].rows;
        }
    }
    return unknown;
}

/* Fills the rectangle [x0, x1) x [y0, y1), clipped to the image. */
static void fill(struct img *im, int x0, int y0, int x1, int y1,
                 const unsigned char rgb[3])
{
    x0 = x0 < 0 ? 0 : x0;
    y0 = y0 < 0 ? 0 : y0;
    x1 = x1 > im->width ? im->width : x1;
    y1 = y1 > im->height ? im->height : y1;
    for (int y = y0; y < y1; y++) {
        unsigned char *px = im->rgb + ((size_t)y * (size_t)im->width +
                                       (size_t)x0) * 3;

        for (int x = x0; x < x1; x++, px += 3) {
            memcpy(px, rgb, 3);
        }
    }
}

/* Draws `text` with its top left corner at (x, y), each dot scale x scale. */
static void text(struct img *im, int x, int y, int scale, const char *s)
{
    for (; *s != '\0'; s++, x += (DRAW_GLYPH_W + 1) * scale) {
        const unsigned char *rows = *s == ' ' ? NULL : glyph_rows(*s);

        for (int r = 0; rows != NULL && r < DRAW_GLYPH_H; r++) {
            for (int c = 0; c < DRAW_GLYPH_W; c++) {
                if (rows[r] & (1u << (DRAW_GLYPH_W - 1 - c))) {
                    fill(im, x + c * scale, y + r * scale,
                         x + (c + 1) * scale, y + (r + 1) * scale, draw_ink);
                }
            }
        }
    }
}

void draw_faces(struct img *im, const struct predict_result *r,
                const struct card *card)
{
    int small = im->width < im->height ? im->width : im->height;
    /* About 2 px of line per 500 px of image, 1 dot of font per 300. */
    int line = small / 250 > 1 ? small / 250 : 1;
    int scale = small / 300 > 1 ? small / 300 : 1;
    int label_h = (DRAW_GLYPH_H + 2) * scale;

    for (int i = 0; i < r->n_faces; i++) {
        const struct predict_face *f = &r->faces[i];
        const struct prediction *a = &f->attr;
        int x0 = f->x, y0 = f->y;
        int x1 = f->x + f->width, y1 = f->y + f->height;
        int ly, lw;
        char label[96];

        fill(im, x0, y0, x1, y0 + line, draw_box);
        fill(im, x0, y1 - line, x1, y1, draw_box);
        fill(im, x0, y0, x0 + line, y1, draw_box);
        fill(im, x1 - line, y0, x1, y1, draw_box);

        snprintf(label, sizeof(label), "%s %.0f %s",
                 a->p_male >= 0.5 ? "male" : "female", reply_age(a),
                 a->n_emotions > 0 ? card->labels[a->ranked[0]] : "");
        lw = (int)strlen(label) * (DRAW_GLYPH_W + 1) * scale + scale;
        ly = y0 - label_h >= 0 ? y0 - label_h : y1;
        fill(im, x0, ly, x0 + lw, ly + label_h, draw_box);
        text(im, x0 + scale, ly + scale, scale, label);
    }
}

/* A growing buffer for stb's write callback. */
struct draw_out {
    unsigned char *data;
    size_t len;
    size_t cap;
    int failed;
};

static void draw_write(void *ctx, void *data, int size)
{
    struct draw_out *o = ctx;

    if (o->failed || size <= 0) {
        return;
    }
    if (o->len + (size_t)size > o->cap) {
        size_t cap = o->cap * 2 > o->len + (size_t)size
                         ? o->cap * 2 : o->len + (size_t)size;
        unsigned char *grown = realloc(o->data, cap);

        if (grown == NULL) {
            o->failed = 1;
            return;
        }
        o->data = grown;
        o->cap = cap;
    }
    memcpy(o->data + o->len, data, (size_t)size);
    o->len += (size_t)size;
}

unsigned char *draw_png(const struct img *im, size_t *len)
{
    struct draw_out o = { NULL, 0, 0, 0 };

    *len = 0;
    if (!stbi_write_png_to_func(draw_write, &o, im->width, im->height, 3,
                                im->rgb, im->width * 3) || o.failed) {
        free(o.data);
        return NULL;
    }
    *len = o.len;
    return o.data;
}
