/* --prompt-cache: a session file (docs/FORMAT.md, Session file) holding
 * the KV cells of a prompt between runs, as llama-cli's: one-shot
 * generation keeps its prompt (and with --prompt-cache-all what it
 * generated), chat its system turn. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* Before anything is evaluated: a cache that will be written must be a
 * file in a directory we can write (the save renames a new file over it).
 * 0, or 1 after printing the error. */
int bn_cli_cache_check_path(const char *path) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return bn_err("%s: is a directory, not a prompt cache file", path);
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    char *dir = malloc(n + 2);
    if (!dir) return bn_err("out of memory");
    if (!slash) strcpy(dir, ".");
    else if (n == 0) strcpy(dir, "/");
    else {
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int ok = access(dir, W_OK | X_OK) == 0;
    int e = errno;
    free(dir);
    if (!ok) return bn_err("%s: cannot write the prompt cache there: %s", path, strerror(e));
    return 0;
}

/* Loads the session file into c and keeps the cells of the longest common
 * start of its tokens and the prompt's; with need_logits, all but the
 * prompt's last token (decoding it again gives the logits to sample from). A file that is
 * missing, empty or refused leaves an empty cache: the whole prompt is
 * evaluated (refused: a warning saying why, as llama-cli goes on without
 * the session). *n_reuse: prompt tokens already in the cache. Returns 1
 * when the file should be written after the prompt (it does not already
 * hold the whole prompt), 0 when not. */
int bn_cli_cache_load(const bn_cli_opts *o, bn_context *c, const int32_t *prompt, int n_prompt,
                      int need_logits, int32_t *kv_tokens, int *n_reuse) {
    const char *path = o->prompt_cache;
    const int log = !o->log_disable;
    struct stat st;
    *n_reuse = 0;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT) {
            if (log)
                fprintf(stderr, "prompt cache: %s does not exist%s\n", path,
                        o->prompt_cache_ro ? " (--prompt-cache-ro: nothing is saved)" : "; it will be created");
            return 1;
        }                           /* else the loader says why it cannot read it */
    } else if (S_ISREG(st.st_mode) && st.st_size == 0) {
        if (log) fprintf(stderr, "prompt cache: %s is empty; a new session starts\n", path);
        return 1;
    }
    char err[512];
    int n_saved = 0;
    double t0 = bn_now_ms();
    if (bn_session_load(c, path, kv_tokens, bn_context_n_ctx(c), &n_saved, err, sizeof err) != 0) {
        fflush(stdout);
        fprintf(stderr, "bitnet: warning: %s: %s; the prompt cache is ignored and the whole prompt "
                "evaluated\n", path, err);
        return 1;
    }
    int n_match = 0;
    while (n_match < n_saved && n_match < n_prompt && kv_tokens[n_match] == prompt[n_match]) n_match++;
    if (log)
        fprintf(stderr, "prompt cache: loaded %d tokens from %s in %.2f ms; %d of the prompt's %d "
                "tokens match\n", n_saved, path, bn_now_ms() - t0, n_match, n_prompt);
    int save = n_match < n_prompt;
    if (n_match == n_prompt && need_logits) n_match--;
    if (bn_context_truncate(c, n_match, err, sizeof err) != 0) {   /* n_match <= n_saved: cannot fail */
        bn_context_reset(c);
        n_match = 0;
    }
    *n_reuse = n_match;
    return save;
}

/* Saves the first n cells. 0, or 1 after printing the error. */
int bn_cli_cache_save(const bn_cli_opts *o, const bn_context *c, const int32_t *kv_tokens, int n) {
    char err[512];
    double t0 = bn_now_ms();
    if (bn_session_save(c, o->prompt_cache, kv_tokens, n, err, sizeof err) != 0)
        return bn_err("%s: cannot save the prompt cache: %s", o->prompt_cache, err);
    if (!o->log_disable)
        fprintf(stderr, "prompt cache: saved %d tokens to %s in %.2f ms\n", n, o->prompt_cache,
                bn_now_ms() - t0);
    return 0;
}
