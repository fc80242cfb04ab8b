/* bitnet-make-vocab: writes the vocab-only LLaMA-3 GGUF test fixture
 * (tests/data/llama3-vocab.gguf) from the plain-text tokenizer data:
 *
 *   DIR/llama3-vocab.txt        one token per line, GGUF byte-level form
 *   DIR/llama3-merges.txt       one "A B" merge per line, in rank order
 *   DIR/llama3-token-types.txt  one GGUF token_type per line
 *
 * The file carries only tokenizer.* keys (no tensors, no scores, no
 * tokenizer.ggml.pre, like the published BitNet-b1.58-2B-4T file) so that it
 * stays small and exercises the "pre key absent" path.
 *
 * usage: bitnet-make-vocab [-d DIR] [-o OUT.gguf] */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_writer.h"

#ifndef BN_SOURCE_DIR
#define BN_SOURCE_DIR "."
#endif
#ifndef BN_DEFAULT_LLAMA3_VOCAB
#define BN_DEFAULT_LLAMA3_VOCAB "tests/data/llama3-vocab.gguf"
#endif

/* A whole text file split into lines in place ('\n' replaced by NUL). */
typedef struct lines {
    char *buf;
    gguf_str *v;
    uint64_t n;
} lines;

static int read_lines(const char *dir, const char *name, lines *out)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "bitnet-make-vocab: error: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    out->buf = malloc((size_t)size + 1);
    if (!out->buf || fread(out->buf, 1, (size_t)size, fp) != (size_t)size) {
        fprintf(stderr, "bitnet-make-vocab: error: cannot read %s\n", path);
        fclose(fp);
        return -1;
    }
    fclose(fp);
    out->buf[size] = '\0';

    uint64_t n = 0;
    for (long i = 0; i < size; i++) n += out->buf[i] == '\n';
    if (size > 0 && out->buf[size - 1] != '\n') n++;       /* last line unterminated */
    out->v = malloc((n ? n : 1) * sizeof *out->v);
    if (!out->v) return -1;
    out->n = 0;
    char *p = out->buf, *end = out->buf + size;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) nl = end;
        *nl = '\0';
        out->v[out->n].ptr = p;
        out->v[out->n].len = (uint64_t)(nl - p);
        out->n++;
        p = nl + 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = BN_SOURCE_DIR "/../shared/tokenizer";
    const char *outpath = BN_DEFAULT_LLAMA3_VOCAB;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-d") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "-o") && i + 1 < argc) outpath = argv[++i];
        else {
            fprintf(stderr, "usage: bitnet-make-vocab [-d TOKENIZER_DIR] [-o OUT.gguf]\n");
            return 2;
        }
    }

    lines toks, merges, types;
    if (read_lines(dir, "llama3-vocab.txt", &toks) || read_lines(dir, "llama3-merges.txt", &merges) ||
        read_lines(dir, "llama3-token-types.txt", &types))
        return 1;
    if (types.n != toks.n) {
        fprintf(stderr, "bitnet-make-vocab: error: %llu tokens but %llu token types\n",
                (unsigned long long)toks.n, (unsigned long long)types.n);
        return 1;
    }
    int32_t *tt = malloc(types.n * sizeof *tt);
    if (!tt) return 1;
    for (uint64_t i = 0; i < types.n; i++) tt[i] = (int32_t)strtol(types.v[i].ptr, NULL, 10);

    gguf_writer *w = gguf_writer_new(0);
    gguf_w_str(w, "general.name", "LLaMA-3 tokenizer (vocab only)");
    gguf_w_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_w_arr_str(w, "tokenizer.ggml.tokens", toks.v, toks.n);
    gguf_w_arr(w, "tokenizer.ggml.token_type", GGUF_I32, tt, types.n);
    gguf_w_arr_str(w, "tokenizer.ggml.merges", merges.v, merges.n);
    gguf_w_u32(w, "tokenizer.ggml.bos_token_id", 128000);
    gguf_w_u32(w, "tokenizer.ggml.eos_token_id", 128001);
    gguf_w_u32(w, "tokenizer.ggml.padding_token_id", 128001);
    gguf_w_bool(w, "tokenizer.ggml.add_bos_token", 1);

    char err[256];
    int rc = gguf_writer_write(w, outpath, err, sizeof err);
    gguf_writer_free(w);
    if (rc) {
        fprintf(stderr, "bitnet-make-vocab: error: %s: %s\n", outpath, err);
        return 1;
    }
    printf("wrote %s: %llu tokens, %llu merges\n", outpath, (unsigned long long)toks.n,
           (unsigned long long)merges.n);
    free(tt);
    free(toks.buf); free(toks.v);
    free(merges.buf); free(merges.v);
    free(types.buf); free(types.v);
    return 0;
}
