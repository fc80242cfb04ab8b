/* llama-cli's and llama-bench's flags that bitnet.c has no use for, or does
 * not offer. A command line written for llama-cli or bitnet.cpp's
 * run_inference.py should run as it is: a flag that changes nothing here
 * (memory mapping, GPU-style attention switches, colours) is accepted with
 * a note saying why it is ignored; one that would change what is generated
 * in a way bitnet.c cannot honour (grammars, other samplers, interactive
 * mode, adapters) is an error naming that, not "unknown argument". Each
 * sampler switch accepts its "off" value. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum foreign_kind {
    IGNORED,        /* accepted; a note says why it changes nothing */
    UNSUPPORTED,    /* an error naming what is missing */
    OFF_ONLY        /* accepted with its "off" value, an error otherwise */
};

/* Values: 0 none, 1 one, 2 an optional on/off/auto word (llama.cpp's -fa
 * took none before it took one). */
static const struct foreign {
    const char *name, *alias;
    int has_value;
    int cmds;
    enum foreign_kind kind;
    const char *off;                /* OFF_ONLY: the value meaning off */
    const char *why;
} foreign[] = {
#define EVAL (BN_CMD_GENERATE | BN_CMD_BENCH | BN_CMD_LOGITS | BN_CMD_PERPLEXITY | BN_CMD_SERVE)
#define GEN BN_CMD_GENERATE
    {"--no-mmap", NULL, 0, EVAL, IGNORED, NULL,
     "bitnet.c maps the file and copies at load only what it re-lays"},
    {"-mmp", "--mmap", 1, BN_CMD_BENCH, IGNORED, NULL, "bitnet.c always maps the file"},
    {"-fa", "--flash-attn", 2, EVAL, IGNORED, NULL,
     "attention always runs in cache-sized tiles with an online softmax"},
    {"-tb", "--threads-batch", 1, EVAL, IGNORED, NULL,
     "prompt batches and generation both use the -t threads"},
    {"--numa", NULL, 1, EVAL, IGNORED, NULL, "no NUMA placement"},
    {"--no-warmup", NULL, 0, EVAL, IGNORED, NULL, "bitnet.c runs no warm-up pass"},
    {"-co", "--color", 0, GEN, IGNORED, NULL, "no colours"},
    {"-v", "--verbose", 0, EVAL, IGNORED, NULL, "no extra logging"},
    {"--log-verbose", NULL, 0, EVAL, IGNORED, NULL, "no extra logging"},
    {"--simple-io", NULL, 0, GEN, IGNORED, NULL, "the chat reads plain lines already"},
    {"-dkvc", "--dump-kv-cache", 0, GEN, IGNORED, NULL, "no KV cache dump"},
    {"--mirostat", NULL, 1, GEN, OFF_ONLY, "0", "mirostat sampling is not supported"},
    {"--typical", NULL, 1, GEN, OFF_ONLY, "1", "locally typical sampling is not supported"},
    {"--xtc-probability", NULL, 1, GEN, OFF_ONLY, "0", "XTC sampling is not supported"},
    {"--dry-multiplier", NULL, 1, GEN, OFF_ONLY, "0", "DRY sampling is not supported"},
    {"-i", "--interactive", 0, GEN, UNSUPPORTED, NULL,
     "interactive mode is the chat here: use -cnv (-sys for a system prompt)"},
    {"-if", "--interactive-first", 0, GEN, UNSUPPORTED, NULL,
     "interactive mode is the chat here: use -cnv (-sys for a system prompt)"},
    {"-ins", "--instruct", 0, GEN, UNSUPPORTED, NULL,
     "instruct mode is the chat here: use -cnv (-sys for a system prompt)"},
    {"--in-prefix", NULL, 1, GEN, UNSUPPORTED, NULL,
     "the chat formats messages with the model's template (-cnv)"},
    {"--in-suffix", NULL, 1, GEN, UNSUPPORTED, NULL,
     "the chat formats messages with the model's template (-cnv)"},
    {"--grammar", NULL, 1, GEN, UNSUPPORTED, NULL, "grammar-constrained sampling is not supported"},
    {"--grammar-file", NULL, 1, GEN, UNSUPPORTED, NULL, "grammar-constrained sampling is not supported"},
    {"-j", "--json-schema", 1, GEN, UNSUPPORTED, NULL, "grammar-constrained sampling is not supported"},
    {"--lora", NULL, 1, EVAL, UNSUPPORTED, NULL, "LoRA adapters are not supported"},
    {"--control-vector", NULL, 1, EVAL, UNSUPPORTED, NULL, "control vectors are not supported"},
    {"-md", "--model-draft", 1, GEN, UNSUPPORTED, NULL, "speculative decoding is not supported"},
    {"--rope-freq-base", NULL, 1, EVAL, UNSUPPORTED, NULL,
     "RoPE comes from the model file (overrides are not supported)"},
    {"--rope-freq-scale", NULL, 1, EVAL, UNSUPPORTED, NULL,
     "RoPE comes from the model file (overrides are not supported)"},
    {"--rope-scaling", NULL, 1, EVAL, UNSUPPORTED, NULL,
     "RoPE comes from the model file (overrides are not supported)"},
#undef EVAL
#undef GEN
};

static int is_switch_word(const char *s) {
    return strcmp(s, "on") == 0 || strcmp(s, "off") == 0 || strcmp(s, "auto") == 0 ||
           strcmp(s, "0") == 0 || strcmp(s, "1") == 0;
}

int bn_cli_foreign_flag(int cmd, int argc, char **argv, int *i, const char *name, const char *inline_v,
                        bn_cli_opts *o) {
    const struct foreign *f = NULL;
    for (size_t k = 0; k < sizeof foreign / sizeof foreign[0] && !f; k++)
        if (strcmp(name, foreign[k].name) == 0 || (foreign[k].alias && strcmp(name, foreign[k].alias) == 0))
            f = &foreign[k];
    if (!f) return -1;
    if (!(f->cmds & cmd))
        return bn_err("%s is not an option of this command (see bitnet --help)", name);
    const char *v = inline_v;
    if (f->has_value == 1 && !v) {
        if (*i + 1 >= argc) return bn_err("%s needs a value (see bitnet --help)", name);
        v = argv[++*i];
    } else if (f->has_value == 2 && !v && *i + 1 < argc && is_switch_word(argv[*i + 1])) {
        v = argv[++*i];
    } else if (f->has_value == 0 && v) {
        return bn_err("%s takes no value", name);
    }
    switch (f->kind) {
    case UNSUPPORTED:
        return bn_err("%s: %s", name, f->why);
    case OFF_ONLY: {
        float x;
        if (bn_parse_float(name, v, -1e9f, 1e9f, &x) != 0) return 1;
        if (x != strtof(f->off, NULL))
            return bn_err("%s %s: %s (%s %s, off, is accepted)", name, v, f->why, name, f->off);
        return 0;
    }
    case IGNORED:
        if (o->n_notes < BN_CLI_MAX_NOTES) {
            o->notes[o->n_notes].flag = name;
            o->notes[o->n_notes].value = v;
            o->notes[o->n_notes].why = f->why;
            o->n_notes++;
        }
        return 0;
    }
    return 0;
}
