/* `bitnet serve`: loads the model, sizes the slots from the options (as
 * llama-server: -c is the context of all slots together, each gets
 * -c / -np; -t threads of the forward pass that serves every slot at once,
 * default the physical cores)
 * and runs the server (src/server/serve.c) until SIGINT or SIGTERM. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"


int bn_cmd_serve(const bn_cli_opts *o) {
    double load_ms = 0;
    bn_model *m = bn_cli_load_model(o, 0, &load_ms);
    if (!m) return 1;
    const bn_hparams *hp = bn_model_hparams(m);
    int n_slots = o->n_parallel > 0 ? o->n_parallel : 1;
    int total = o->n_ctx > 0 ? o->n_ctx : hp->n_ctx_train * n_slots;
    int per_slot = total / n_slots;
    if (per_slot > hp->n_ctx_train) {
        fprintf(stderr, "note: -c %d gives %d tokens per slot, capped to the model's context length %d\n",
                total, per_slot, hp->n_ctx_train);
        per_slot = hp->n_ctx_train;
    }
    if (per_slot < 8) {
        bn_model_free(m);
        return bn_err("-c %d is too small for %d slot%s (at least 8 tokens per slot)", total, n_slots,
                      n_slots == 1 ? "" : "s");
    }
    bn_cli_log_load(o, m, load_ms);
    const char *path = bn_cli_model_path(o);
    const char *base = path ? strrchr(path, '/') : NULL;
    bn_serve_params p;
    memset(&p, 0, sizeof p);
    p.host = o->host ? o->host : "127.0.0.1";
    p.port = o->port;
    p.n_slots = n_slots;
    p.n_ctx = per_slot;
    p.n_threads = o->n_threads > 0 ? o->n_threads : bn_physical_cores();   /* shared by the slots */
    p.api_key = o->api_key;
    p.model_name = o->alias ? o->alias : base ? base + 1 : path ? path : "bitnet";
    p.timeout_s = o->timeout > 0 ? o->timeout : 30;
    p.max_conns = o->max_conns > 0 ? o->max_conns : 64;
    p.max_body = 1 << 20;
    p.type_k = o->type_k;
    p.type_v = o->type_v;
    p.no_slots = o->no_slots;
    p.slot_save_path = o->slot_save_path;
    char *tmpl_owned = NULL;
    if (bn_cli_chat_template(o, &p.chat_template, &tmpl_owned) != 0) {
        bn_model_free(m);
        return 1;
    }
    int rc = bn_serve(m, &p);
    bn_model_free(m);
    free(tmpl_owned);
    return rc;
}
