/* `bitnet tokenize`: token ids of -p TEXT or the raw bytes of -f FILE,
 * space separated on one line. Loads the vocabulary only. */
#include <stdlib.h>

#include "cli.h"

int bn_cmd_tokenize(const bn_cli_opts *o) {
    size_t len = 0;
    char *text = bn_cli_prompt_text(o, &len);
    if (!text) return 1;
    bn_model *m = bn_cli_load_model(o, 1, NULL);
    if (!m) {
        free(text);
        return 1;
    }
    const bn_tokenizer *tok = bn_model_tokenizer(m);
    int n = 0;
    int32_t *ids = bn_cli_tokenize(tok, text, len, !o->no_bos && bn_add_bos(tok),
                                   !o->no_special, &n);
    if (ids) {
        bn_cli_log_load(o, m, 0);
        for (int i = 0; i < n; i++) printf("%s%d", i ? " " : "", (int)ids[i]);
        printf("\n");
        if (bn_cli_close_stdout() == 0) fprintf(stderr, "tokens: %d\n", n);
    }
    free(ids);
    free(text);
    bn_model_free(m);
    return ids ? 0 : 1;
}
