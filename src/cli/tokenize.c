/* `bitnet tokenize`: token ids of -p TEXT or the raw bytes of -f FILE,
 * space separated on one line. Loads the tokenizer alone, so any GGUF with
 * tokenizer.* keys will do (a vocabulary-only file, any architecture). */
#include <stdlib.h>

#include "cli.h"

int bn_cmd_tokenize(const bn_cli_opts *o) {
    size_t len = 0;
    char *text = bn_cli_prompt_text(o, &len);
    if (!text) return 1;
    const char *path = bn_cli_model_path(o);
    char err[512];
    bn_tokenizer *tok = path ? bn_tokenizer_load(path, o->pre_tokenizer, err, sizeof err) : NULL;
    if (!tok) {
        if (path) bn_err("%s: %s", path, err);
        free(text);
        return 1;
    }
    int n = 0;
    int32_t *ids = bn_cli_tokenize(tok, text, len, !o->no_bos && bn_add_bos(tok),
                                   !o->no_special, &n);
    if (ids) {
        fprintf(stderr, "load: %s: vocabulary of %d tokens\n", path, bn_vocab_size(tok));
        for (int i = 0; i < n; i++) printf("%s%d", i ? " " : "", (int)ids[i]);
        printf("\n");
        if (bn_cli_close_stdout() == 0) fprintf(stderr, "tokens: %d\n", n);
    }
    free(ids);
    free(text);
    bn_tokenizer_free(tok);
    return ids ? 0 : 1;
}
