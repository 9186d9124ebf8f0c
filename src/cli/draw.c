/* draw — an SDL2 canvas that reads a digit as it is drawn.
 *
 * The canvas is 28 x 28 MNIST cells drawn at 10x resolution (280 x 280) with a soft
 * round brush, so strokes look like MNIST's anti-aliased pen. About once a second while
 * there is ink, and at once when a button is released, the canvas goes through the same
 * MNIST-style preprocessing as `scratchnet predict` (fit 20x20, centre of mass at the
 * centre) and the network's answer is shown: the digit, ten probability bars, and the
 * 28 x 28 image the network actually sees.
 *
 * --replay FILE feeds synthetic mouse events (lines "down X Y", "move X Y", "up X Y",
 * "clear"; X, Y in canvas cells 0..28) through SDL's event queue, prints the final
 * prediction and exits: the headless test and the README screenshot use it. */
#include <SDL.h>
#include <SDL_ttf.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef SN_HAVE_PNG
#include <png.h>
#endif

#include "cli.h"
#include "scratchnet/drawn.h"
#include "scratchnet/gemm.h"
#include "scratchnet/image.h"
#include "scratchnet/layers.h"
#include "scratchnet/model.h"
#include "scratchnet/modelfile.h"

enum { CELLS = 28, SCALE = 10, RES = CELLS * SCALE, VIEW = 2 * RES, MARGIN = 20, PANEL = 360 };
enum { WIN_W = MARGIN + VIEW + MARGIN + PANEL + MARGIN, WIN_H = MARGIN + VIEW + MARGIN + 30 };
static const char *FONT_PATHS[] = { "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                                    "/usr/share/fonts/TTF/DejaVuSans.ttf", NULL };
static const float BRUSH_RADIUS = 11.0f, BRUSH_FEATHER = 5.0f; /* canvas pixels (of 280) */

typedef struct app {
    SDL_Window *win;
    SDL_Renderer *ren;
    SDL_Texture *canvas_tex, *seen_tex;
    TTF_Font *font, *big;
    float ink[RES * RES];
    float seen[CELLS * CELLS];
    float probs[10];
    int digit, has_prediction, empty, dirty;
    int drawing, erasing;
    float last_x, last_y;
    Uint32 last_predict;
    sn_net model;
    sn_forward_ctx ctx;
} app;

/* Soft disc at (cx, cy) in canvas pixels: full ink inside R - feather, fading to 0 at R. */
static void stamp(app *a, float cx, float cy, int erase)
{
    sn_brush_stamp(a->ink, RES, RES, cx, cy, BRUSH_RADIUS, BRUSH_FEATHER, erase);
    a->dirty = 1;
}

/* A stroke segment: stamps every pixel along the way so fast strokes stay continuous. */
static void stroke(app *a, float x, float y, int erase)
{
    float dx = x - a->last_x, dy = y - a->last_y, len = sqrtf(dx * dx + dy * dy);
    int steps = (int)len + 1;
    for (int i = 1; i <= steps; i++) stamp(a, a->last_x + dx * i / steps, a->last_y + dy * i / steps, erase);
    a->last_x = x, a->last_y = y;
}

static void predict(app *a)
{
    sn_error err;
    a->last_predict = SDL_GetTicks();
    if (sn_canvas_to_mnist(a->ink, RES, RES, &a->model.pre, a->seen, &err) != SN_OK) {
        a->empty = 1;
        a->has_prediction = 0;
        memset(a->seen, 0, sizeof a->seen);
        return;
    }
    a->empty = 0;
    memcpy(a->ctx.act[0], a->seen, sizeof a->seen);
    sn_softmax(a->probs, sn_net_forward(&a->model, &a->ctx, 1), 1, 10);
    a->digit = 0;
    for (int k = 1; k < 10; k++)
        if (a->probs[k] > a->probs[a->digit]) a->digit = k;
    a->has_prediction = 1;
}

static void text(app *a, TTF_Font *f, const char *s, int x, int y, SDL_Color c)
{
    SDL_Surface *surf = TTF_RenderUTF8_Blended(f, s, c);
    if (!surf) return;
    SDL_Texture *t = SDL_CreateTextureFromSurface(a->ren, surf);
    SDL_Rect r = { x, y, surf->w, surf->h };
    SDL_RenderCopy(a->ren, t, NULL, &r);
    SDL_DestroyTexture(t);
    SDL_FreeSurface(surf);
}

static void render(app *a)
{
    static const SDL_Color white = { 240, 240, 240, 255 }, grey = { 150, 150, 160, 255 }, accent = { 90, 200, 120, 255 };
    SDL_SetRenderDrawColor(a->ren, 28, 30, 36, 255);
    SDL_RenderClear(a->ren);

    /* The canvas: ink as MNIST shows it, light on dark. */
    void *pixels;
    int pitch;
    if (SDL_LockTexture(a->canvas_tex, NULL, &pixels, &pitch) == 0) {
        for (int y = 0; y < RES; y++) {
            Uint32 *row = (Uint32 *)((Uint8 *)pixels + (size_t)y * pitch);
            for (int x = 0; x < RES; x++) {
                Uint32 v = (Uint32)(a->ink[y * RES + x] * 255.0f + 0.5f);
                row[x] = 0xff000000u | v << 16 | v << 8 | v;
            }
        }
        SDL_UnlockTexture(a->canvas_tex);
    }
    SDL_Rect canvas = { MARGIN, MARGIN, VIEW, VIEW };
    SDL_RenderCopy(a->ren, a->canvas_tex, NULL, &canvas);
    SDL_SetRenderDrawColor(a->ren, 90, 90, 100, 255);
    SDL_RenderDrawRect(a->ren, &canvas);

    const int px = MARGIN + VIEW + MARGIN;
    if (a->has_prediction) {
        char s[64];
        text(a, a->big, (char[]){ (char)('0' + a->digit), 0 }, px + 10, MARGIN - 10, accent);
        snprintf(s, sizeof s, "p = %.3f", a->probs[a->digit]);
        text(a, a->font, s, px + 110, MARGIN + 40, white);
    } else {
        text(a, a->font, a->empty ? "canvas empty: draw a digit" : "...", px, MARGIN + 40, grey);
    }
    /* Ten probability bars. */
    const int by = MARGIN + 150, bar_h = 22, bar_w = PANEL - 90;
    for (int k = 0; k < 10; k++) {
        char s[16];
        int y = by + k * (bar_h + 6);
        snprintf(s, sizeof s, "%d", k);
        text(a, a->font, s, px, y, white);
        SDL_Rect back = { px + 24, y + 2, bar_w, bar_h - 4 };
        SDL_SetRenderDrawColor(a->ren, 50, 52, 60, 255);
        SDL_RenderFillRect(a->ren, &back);
        if (a->has_prediction) {
            SDL_Rect fill = { px + 24, y + 2, (int)(a->probs[k] * bar_w + 0.5f), bar_h - 4 };
            if (k == a->digit) SDL_SetRenderDrawColor(a->ren, accent.r, accent.g, accent.b, 255);
            else SDL_SetRenderDrawColor(a->ren, 110, 140, 200, 255);
            SDL_RenderFillRect(a->ren, &fill);
            snprintf(s, sizeof s, "%3.0f%%", a->probs[k] * 100.0f);
            text(a, a->font, s, px + 24 + bar_w + 6, y, grey);
        }
    }
    /* What the network sees: the preprocessed 28 x 28. */
    if (SDL_LockTexture(a->seen_tex, NULL, &pixels, &pitch) == 0) {
        for (int y = 0; y < CELLS; y++) {
            Uint32 *row = (Uint32 *)((Uint8 *)pixels + (size_t)y * pitch);
            for (int x = 0; x < CELLS; x++) {
                Uint32 v = (Uint32)(a->seen[y * CELLS + x] * 255.0f + 0.5f);
                row[x] = 0xff000000u | v << 16 | v << 8 | v;
            }
        }
        SDL_UnlockTexture(a->seen_tex);
    }
    const int sy = by + 10 * (bar_h + 6) + 14;
    text(a, a->font, "what the network sees (28x28):", px, sy, grey);
    SDL_Rect seen = { px, sy + 26, 4 * CELLS, 4 * CELLS };
    SDL_RenderCopy(a->ren, a->seen_tex, NULL, &seen);
    SDL_SetRenderDrawColor(a->ren, 90, 90, 100, 255);
    SDL_RenderDrawRect(a->ren, &seen);
    text(a, a->font, "left button: draw    right button: erase    R: clear    Q or Esc: quit", MARGIN,
         MARGIN + VIEW + 8, grey);
    SDL_RenderPresent(a->ren);
}

/* Window pixel -> canvas pixel (0..280). */
static void to_canvas(int wx, int wy, float *cx, float *cy)
{
    *cx = (float)(wx - MARGIN) * RES / VIEW;
    *cy = (float)(wy - MARGIN) * RES / VIEW;
}

static int handle(app *a, const SDL_Event *e)
{
    float cx, cy;
    switch (e->type) {
    case SDL_QUIT: return 0;
    case SDL_KEYDOWN:
        if (e->key.keysym.sym == SDLK_ESCAPE || e->key.keysym.sym == SDLK_q) return 0;
        if (e->key.keysym.sym == SDLK_r) {
            memset(a->ink, 0, sizeof a->ink);
            predict(a);
        }
        break;
    case SDL_MOUSEBUTTONDOWN:
        to_canvas(e->button.x, e->button.y, &cx, &cy);
        a->last_x = cx, a->last_y = cy;
        if (e->button.button == SDL_BUTTON_LEFT) a->drawing = 1;
        if (e->button.button == SDL_BUTTON_RIGHT) a->erasing = 1;
        if (a->drawing || a->erasing) stamp(a, cx, cy, a->erasing);
        break;
    case SDL_MOUSEMOTION:
        if (a->drawing || a->erasing) {
            to_canvas(e->motion.x, e->motion.y, &cx, &cy);
            stroke(a, cx, cy, a->erasing);
        }
        break;
    case SDL_MOUSEBUTTONUP:
        if (e->button.button == SDL_BUTTON_LEFT) a->drawing = 0;
        if (e->button.button == SDL_BUTTON_RIGHT) a->erasing = 0;
        predict(a); /* at once on release */
        break;
    }
    return 1;
}

/* Queues the replay file's events as if a mouse produced them. */
static int queue_replay(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "draw: --replay: cannot open %s\n", path);
        return 0;
    }
    char line[256], verb[16];
    int n = 0, ok = 1;
    while (fgets(line, sizeof line, f)) {
        float x = 0, y = 0;
        n++;
        if (line[0] == '#' || line[0] == '\n') continue;
        SDL_Event e;
        memset(&e, 0, sizeof e);
        int fields = sscanf(line, "%15s %f %f", verb, &x, &y);
        int wx = MARGIN + (int)(x * VIEW / CELLS), wy = MARGIN + (int)(y * VIEW / CELLS);
        if (fields >= 1 && !strcmp(verb, "clear")) {
            e.type = SDL_KEYDOWN;
            e.key.keysym.sym = SDLK_r;
        } else if (fields == 3 && (!strcmp(verb, "down") || !strcmp(verb, "up"))) {
            e.type = verb[0] == 'd' ? SDL_MOUSEBUTTONDOWN : SDL_MOUSEBUTTONUP;
            e.button.button = SDL_BUTTON_LEFT;
            e.button.x = wx, e.button.y = wy;
        } else if (fields == 3 && !strcmp(verb, "move")) {
            e.type = SDL_MOUSEMOTION;
            e.motion.x = wx, e.motion.y = wy;
        } else {
            fprintf(stderr, "draw: --replay: %s line %d: expected 'down X Y', 'move X Y', 'up X Y' or 'clear'\n", path, n);
            ok = 0;
            break;
        }
        if (SDL_PushEvent(&e) < 0) { ok = 0; break; }
    }
    fclose(f);
    return ok;
}

static int save_screenshot(app *a, const char *path)
{
#ifdef SN_HAVE_PNG
    int w, h;
    SDL_GetRendererOutputSize(a->ren, &w, &h);
    unsigned char *buf = malloc((size_t)w * h * 4);
    if (!buf) return 0;
    int ok = SDL_RenderReadPixels(a->ren, NULL, SDL_PIXELFORMAT_ABGR8888, buf, w * 4) == 0;
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w, img.height = (png_uint_32)h, img.format = PNG_FORMAT_RGBA;
    ok = ok && png_image_write_to_file(&img, path, 0, buf, w * 4, NULL);
    free(buf);
    return ok;
#else
    (void)a, (void)path;
    fprintf(stderr, "draw: --screenshot needs libpng at build time\n");
    return 0;
#endif
}

int main(int argc, char **argv)
{
    cli_openmp_defaults(argv);
    const char *model_path = CLI_DEFAULT_MODEL, *replay = NULL, *shot = NULL;
    static const char *const USAGE = "usage: draw [--model FILE] [--replay EVENTS] [--screenshot OUT.png]\n";
    if (cli_asks_version(argc, argv, 1)) {
        cli_print_version("draw");
        return 0;
    }
    if (cli_asks_help(argc, argv, 1)) {
        printf("%s"
               "An SDL2 canvas that reads a digit as it is drawn: left button draws, right button erases,\n"
               "R clears, Q or Esc quits. --replay feeds mouse events from a file (lines 'down X Y',\n"
               "'move X Y', 'up X Y', 'clear'; X, Y in cells 0..28), prints the prediction and exits;\n"
               "--screenshot saves the window as PNG. The model defaults to %s.\n",
               USAGE, CLI_DEFAULT_MODEL);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--model")) model_path = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--replay")) replay = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--screenshot")) shot = argv[++i];
        else {
            fprintf(stderr, "draw: unknown flag or missing value '%s'\n%s", argv[i], USAGE);
            return EXIT_USAGE;
        }
    }
    if (shot && !cli_check_output("draw", "--screenshot", shot, 0)) return EXIT_USAGE;
    FILE *rf = replay ? fopen(replay, "r") : NULL;
    if (replay && !rf) { /* a file that cannot be read is a runtime failure, found before any window */
        fprintf(stderr, "draw: --replay: cannot open %s\n", replay);
        return EXIT_RUNTIME;
    }
    if (rf) fclose(rf);
    static app a;
    sn_error err;
    if (sn_isa_init(&err)) { fprintf(stderr, "draw: %s\n", err.msg); return EXIT_USAGE; }
    if (sn_model_load(&a.model, model_path, &err)) {
        fprintf(stderr, "draw: %s\n", err.msg);
        if (err.code == SN_EIO) fprintf(stderr, "draw: train a model first with: scratchnet train   (it saves %s)\n", CLI_DEFAULT_MODEL);
        return EXIT_RUNTIME;
    }
    if (a.model.sizes[0] != 784 || a.model.sizes[a.model.nlayers] != 10) {
        fprintf(stderr, "draw: %s: network has %d inputs and %d outputs, digits need 784 and 10\n", model_path,
                a.model.sizes[0], a.model.sizes[a.model.nlayers]);
        return EXIT_RUNTIME;
    }
    if (sn_forward_ctx_create(&a.ctx, &a.model, 1, 1, &err)) { fprintf(stderr, "draw: %s\n", err.msg); return EXIT_RUNTIME; }
    const char *font_path = NULL;
    for (int i = 0; FONT_PATHS[i] && !font_path; i++) {
        FILE *f = fopen(FONT_PATHS[i], "rb");
        if (f) fclose(f), font_path = FONT_PATHS[i];
    }
    if (!font_path) {
        fprintf(stderr, "draw: no font found (expected %s; apt-get install fonts-dejavu-core)\n", FONT_PATHS[0]);
        return EXIT_RUNTIME;
    }
    if (SDL_Init(SDL_INIT_VIDEO) != 0 || TTF_Init() != 0) {
        fprintf(stderr, "draw: cannot start SDL: %s\n", SDL_GetError());
        return EXIT_RUNTIME;
    }
    a.win = SDL_CreateWindow("scratchnet draw", SDL_WINDOWPOS_CENTERED, SDL_WINDOWPOS_CENTERED, WIN_W, WIN_H, 0);
    a.ren = a.win ? SDL_CreateRenderer(a.win, -1, SDL_RENDERER_SOFTWARE) : NULL;
    a.font = TTF_OpenFont(font_path, 18);
    a.big = TTF_OpenFont(font_path, 110);
    if (!a.ren || !a.font || !a.big) {
        fprintf(stderr, "draw: cannot open the window or font: %s\n", SDL_GetError());
        SDL_Quit();
        return EXIT_RUNTIME;
    }
    a.canvas_tex = SDL_CreateTexture(a.ren, SDL_PIXELFORMAT_ARGB8888, SDL_TEXTUREACCESS_STREAMING, RES, RES);
    a.seen_tex = SDL_CreateTexture(a.ren, SDL_PIXELFORMAT_ARGB8888, SDL_TEXTUREACCESS_STREAMING, CELLS, CELLS);
    a.empty = 1;
    if (replay && !queue_replay(replay)) { SDL_Quit(); return EXIT_RUNTIME; }

    int running = 1;
    while (running) {
        SDL_Event e;
        int got = replay ? SDL_PollEvent(&e) : SDL_WaitEventTimeout(&e, 100);
        if (got) running = handle(&a, &e);
        else if (replay) running = 0; /* replay queue drained */
        /* About once a second while drawing and there is ink. */
        if (a.dirty && SDL_GetTicks() - a.last_predict >= 1000) predict(&a), a.dirty = 0;
        if (!replay || !running) render(&a);
    }
    int rc = 0;
    if (replay) {
        predict(&a);
        render(&a);
        if (a.has_prediction) printf("digit=%d p=%.4f\n", a.digit, a.probs[a.digit]);
        else printf("empty\n");
    }
    if (shot && !save_screenshot(&a, shot)) {
        fprintf(stderr, "draw: cannot write screenshot %s\n", shot);
        rc = EXIT_RUNTIME;
    }
    TTF_CloseFont(a.font);
    TTF_CloseFont(a.big);
    SDL_DestroyRenderer(a.ren);
    SDL_DestroyWindow(a.win);
    TTF_Quit();
    SDL_Quit();
    sn_forward_ctx_free(&a.ctx);
    sn_net_free(&a.model);
    return rc;
}
