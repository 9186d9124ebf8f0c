#include "sweep_spec.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const key_names[KEY_COUNT] = { "batch", "lr",     "threads", "epochs", "opt",
                                                  "seed",  "layers", "net",     "deskew", "augment" };

const char *sweep_keys_help(void) { return "batch, lr, threads, epochs, opt, seed, layers, net, deskew, augment"; }

void sweep_spec_init(sweep_spec *s, const sweep_run *defaults)
{
    memset(s, 0, sizeof *s);
    s->base = *defaults;
    for (int k = 0; k < KEY_COUNT; k++) s->order[k] = k;
}

void sweep_spec_free(sweep_spec *s)
{
    for (int k = 0; k < KEY_COUNT; k++)
        for (int i = 0; i < s->nvalues[k]; i++) free(s->values[k][i]);
    memset(s->nvalues, 0, sizeof s->nvalues);
}

/* Parses one value of key k into r; returns 0 with a message on error. */
static int parse_value(sweep_key k, const char *v, sweep_run *r, sn_error *err)
{
    char *end;
    errno = 0;
    switch (k) {
    case KEY_BATCH:
    case KEY_THREADS:
    case KEY_EPOCHS: {
        long x = strtol(v, &end, 10), max = k == KEY_BATCH ? 60000 : k == KEY_THREADS ? 1024 : 100000;
        if (end == v || *end || errno || x < 1 || x > max) {
            sn_fail(err, SN_EINVAL, "%s: '%s' is not allowed; expected an integer in 1..%ld", key_names[k], v, max);
            return 0;
        }
        if (k == KEY_BATCH) r->batch = (int)x;
        else if (k == KEY_THREADS) r->threads = (int)x;
        else r->epochs = (int)x;
        return 1;
    }
    case KEY_LR: {
        double x = strtod(v, &end);
        /* The rate is used as a float: it must stay positive and finite once rounded. */
        if (end == v || *end || errno || !isfinite(x) || !((float)x > 0) || !isfinite((float)x)) {
            sn_fail(err, SN_EINVAL, "lr: '%s' is not allowed; expected a finite number > 0 (as a float)", v);
            return 0;
        }
        r->lr = (float)x;
        return 1;
    }
    case KEY_SEED: {
        unsigned long long x = *v == '-' ? 0 : strtoull(v, &end, 10);
        if (*v == '-' || end == v || *end || errno) {
            sn_fail(err, SN_EINVAL, "seed: '%s' is not allowed; expected a non-negative integer", v);
            return 0;
        }
        r->seed = x;
        return 1;
    }
    case KEY_OPT:
        if (sn_opt_parse(v, &r->opt) != SN_OK) {
            sn_fail(err, SN_EINVAL, "opt: '%s' is not allowed; expected sgd, momentum, nesterov or adam", v);
            return 0;
        }
        return 1;
    case KEY_LAYERS:
    case KEY_NET: {
        sn_error e2;
        int sizes[SN_MAX_LAYERS + 1], ns;
        if (k == KEY_LAYERS ? sn_parse_layers(v, sizes, &ns, &e2) : sn_net_parse(v, r->net, &r->nlayers, &e2)) {
            sn_fail(err, SN_EINVAL, "%s: %s", key_names[k], e2.msg);
            return 0;
        }
        if (k == KEY_LAYERS) sn_net_mlp_layers(sizes, ns, r->net), r->nlayers = ns - 1;
        if (r->net[0].in != 784 || r->net[r->nlayers - 1].out != 10) {
            sn_fail(err, SN_EINVAL, "%s: '%s' is not allowed; MNIST needs 784 inputs first and 10 outputs last",
                    key_names[k], v);
            return 0;
        }
        return 1;
    }
    case KEY_DESKEW:
        if (strcmp(v, "on") && strcmp(v, "off")) {
            sn_fail(err, SN_EINVAL, "deskew: '%s' is not allowed; expected on or off", v);
            return 0;
        }
        r->deskew = !strcmp(v, "on");
        return 1;
    case KEY_AUGMENT: {
        sn_error e2;
        if (sn_augment_parse(v, &r->aug, &e2)) {
            sn_fail(err, SN_EINVAL, "augment: %s", e2.msg);
            return 0;
        }
        return 1;
    }
    default: return 0;
    }
}

/* Whether text is a ','-list of preset names only (net=mlp,cnn). */
static int all_presets(const char *text)
{
    char buf[256];
    if (strlen(text) >= sizeof buf) return 0;
    strcpy(buf, text);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        if (!sn_net_preset(tok)) return 0;
    return 1;
}

/* Strips one pair of matching quotes. */
static char *unquote(char *v)
{
    size_t n = strlen(v);
    if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
        v[n - 1] = '\0';
        return v + 1;
    }
    return v;
}

int sweep_spec_add(sweep_spec *s, const char *arg, sn_error *err)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        return sn_fail(err, SN_EINVAL, "'%s' is not KEY=V1,V2,...; valid keys: %s", arg, sweep_keys_help());
    int k = -1;
    for (int i = 0; i < KEY_COUNT; i++)
        if ((size_t)(eq - arg) == strlen(key_names[i]) && !strncmp(arg, key_names[i], (size_t)(eq - arg))) k = i;
    if (k < 0)
        return sn_fail(err, SN_EINVAL, "unknown sweep key '%.*s'; valid keys: %s", (int)(eq - arg), arg, sweep_keys_help());
    if (s->given[k]) return sn_fail(err, SN_EINVAL, "sweep key '%s' given twice", key_names[k]);
    if ((k == KEY_NET && s->given[KEY_LAYERS]) || (k == KEY_LAYERS && s->given[KEY_NET]))
        return sn_fail(err, SN_EINVAL, "sweep keys 'layers' and 'net' both name the network: give one");
    char *raw = strdup(eq + 1);
    if (!raw) return sn_fail(err, SN_ENOMEM, "out of memory");
    char *text = unquote(raw);
    /* Which separator splits values? For layers: ',' when sizes use ':', ';' when lists
     * use ',', otherwise the whole text is one list. */
    const char *sep = ",";
    if (k == KEY_LAYERS) sep = strchr(text, ':') ? "," : strchr(text, ';') ? ";" : "";
    if (k == KEY_NET) sep = strchr(text, ';') ? ";" : all_presets(text) ? "," : "";
    if (k == KEY_AUGMENT) sep = strchr(text, ';') ? ";" : ""; /* a spec has ',' of its own */
    size_t len = strlen(text);
    const char doubled[3] = { *sep, *sep, 0 };
    if (!len || (*sep && (text[0] == *sep || text[len - 1] == *sep || strstr(text, doubled)))) {
        free(raw);
        return sn_fail(err, SN_EINVAL, "sweep key '%s' has an empty value in '%s'", key_names[k], eq + 1);
    }
    int n = 0, rc = SN_OK;
    char *save = NULL, *tok = *sep ? strtok_r(text, sep, &save) : text;
    while (tok) {
        char *v = unquote(tok);
        sweep_run probe = s->base;
        if (n == SWEEP_MAX_VALUES) { rc = sn_fail(err, SN_EINVAL, "sweep key '%s' has more than %d values", key_names[k], SWEEP_MAX_VALUES); break; }
        if (!parse_value((sweep_key)k, v, &probe, err)) { rc = SN_EINVAL; break; }
        s->values[k][n++] = strdup(v);
        tok = *sep ? strtok_r(NULL, sep, &save) : NULL;
    }
    free(raw);
    if (rc) {
        for (int i = 0; i < n; i++) free(s->values[k][i]);
        return rc;
    }
    s->nvalues[k] = n;
    s->given[k] = 1;
    /* Keep the user's order: move k after the keys given before it. */
    int pos = 0;
    for (int i = 0; i < KEY_COUNT; i++) if (s->given[s->order[i]] && s->order[i] != k) pos = i + 1;
    int cur = 0;
    while (s->order[cur] != k) cur++;
    memmove(&s->order[pos + 1], &s->order[pos], sizeof(int) * (size_t)(cur - pos));
    s->order[pos] = k;
    return SN_OK;
}

int sweep_spec_count(const sweep_spec *s)
{
    long n = 1;
    for (int k = 0; k < KEY_COUNT; k++)
        if (s->given[k]) {
            n *= s->nvalues[k];
            if (n > SWEEP_MAX_RUNS) return SWEEP_MAX_RUNS + 1;
        }
    return (int)n;
}

void sweep_spec_run(const sweep_spec *s, int i, sweep_run *out)
{
    *out = s->base;
    /* The last swept key varies fastest. */
    for (int o = KEY_COUNT - 1; o >= 0; o--) {
        int k = s->order[o];
        if (!s->given[k]) continue;
        int idx = i % s->nvalues[k];
        i /= s->nvalues[k];
        parse_value((sweep_key)k, s->values[k][idx], out, NULL);
    }
}

void sweep_run_label(const sweep_spec *s, const sweep_run *r, char *out, size_t cap)
{
    size_t len = 0;
    int any = 0;
    for (int k = 0; k < KEY_COUNT; k++) any |= s->given[k];
    out[0] = '\0';
    for (int o = 0; o < KEY_COUNT && len < cap; o++) {
        int k = s->order[o];
        if (any && !s->given[k]) continue;
        char v[160];
        switch (k) {
        case KEY_BATCH: snprintf(v, sizeof v, "%d", r->batch); break;
        case KEY_LR: snprintf(v, sizeof v, "%g", r->lr); break;
        case KEY_THREADS: snprintf(v, sizeof v, "%d", r->threads); break;
        case KEY_EPOCHS: snprintf(v, sizeof v, "%d", r->epochs); break;
        case KEY_OPT: snprintf(v, sizeof v, "%s", sn_opt_name(r->opt)); break;
        case KEY_SEED: snprintf(v, sizeof v, "%llu", (unsigned long long)r->seed); break;
        case KEY_DESKEW: snprintf(v, sizeof v, "%s", r->deskew ? "on" : "off"); break;
        case KEY_AUGMENT: sn_augment_format(&r->aug, v, sizeof v); break;
        default: sn_net_format(r->net, r->nlayers, '-', v, sizeof v); break;
        }
        len += (size_t)snprintf(out + len, cap - len, "%s%s=%s", len ? " " : "", key_names[k], v);
    }
}
