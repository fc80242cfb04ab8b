/* A program that uses an installed bitnet.c the way any other would: through
 * bitnet.h and pkg-config alone (tests/cli_install.sh builds and runs it).
 *
 *   cc generate_example.c $(pkg-config --cflags --libs bitnet) -o example
 *   ./example MODEL "PROMPT" [N]
 *
 * Prints the prompt, then N (default 8) greedily sampled tokens, as
 * `bitnet -m MODEL -p PROMPT -n N --temp 0` does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bitnet.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL PROMPT [N]\n", argv[0]);
        return 2;
    }
    int n_predict = argc > 3 ? atoi(argv[3]) : 8;
    char err[256];
    bn_model_params mp = bn_model_default_params();
    bn_model *m = bn_model_load(argv[1], &mp, err, sizeof err);
    if (!m) {
        fprintf(stderr, "example: %s: %s\n", argv[1], err);
        return 1;
    }
    bn_context *c = bn_context_new(m, NULL, err, sizeof err);
    if (!c) {
        fprintf(stderr, "example: %s\n", err);
        return 1;
    }
    const bn_tokenizer *tok = bn_model_tokenizer(m);
    int32_t ids[256];
    int n = bn_tokenize(tok, argv[2], strlen(argv[2]), bn_add_bos(tok), 1, ids, 256);
    if (n <= 0 || n > 256 || bn_decode(c, ids, n, 0, err, sizeof err) != 0) {
        fprintf(stderr, "example: cannot evaluate the prompt: %s\n", n > 0 ? err : "tokenizer");
        return 1;
    }
    bn_sampler_params sp = bn_sampler_default_params();
    sp.temp = 0.0f;                             /* greedy */
    bn_sampler *s = bn_sampler_new(&sp, bn_vocab_size(tok));
    bn_detok dt;
    bn_detok_init(&dt, tok);
    char piece[512];
    fputs(argv[2], stdout);
    for (int i = 0; i < n_predict; i++) {
        int32_t id = bn_sampler_sample(s, bn_get_logits(c, -1));
        bn_sampler_accept(s, id);
        if (bn_token_is_eog(tok, id)) break;
        fwrite(piece, 1, (size_t)bn_detok_push(&dt, id, piece, (int)sizeof piece), stdout);
        if (i + 1 < n_predict && bn_decode(c, &id, 1, 0, err, sizeof err) != 0) {
            fprintf(stderr, "example: %s\n", err);
            return 1;
        }
    }
    fwrite(piece, 1, (size_t)bn_detok_flush(&dt, piece, (int)sizeof piece), stdout);
    putchar('\n');
    bn_sampler_free(s);
    bn_context_free(c);
    bn_model_free(m);
    return 0;
}
