/* `bitnet info MODEL` (bn_model_print_info): a human-readable report of a
 * loaded model: file and architecture, hyperparameters, metadata (arrays
 * abbreviated), the tensor table (name, type, shape, bytes), totals, kernel
 * variant and memory plan. Reads only the GGUF header and the model struct
 * (sizes through bn_model_describe); no tensor data is touched. Works for
 * vocab_only models too (kernel and repacked sizes: not loaded). */
#include <stdio.h>
#include <string.h>

#include "bitnet.h"
#include "model.h"

/* Little-endian scalar of a metadata value (the host may be big-endian). */
static uint64_t le_bytes(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Prints a GGUF string quoted and escaped, cut after `max` bytes. */
static void print_str(FILE *out, const char *s, uint64_t len, uint64_t max) {
    fputc('"', out);
    for (uint64_t i = 0; i < len && i < max; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            fprintf(out, "\\%c", ch);
        else if (ch == '\n')
            fputs("\\n", out);
        else if (ch < 0x20 || ch == 0x7f)
            fprintf(out, "\\x%02x", ch);
        else
            fputc(ch, out);                 /* UTF-8 passes through */
    }
    fputc('"', out);
    if (len > max)
        fprintf(out, "... (%llu bytes)", (unsigned long long)len);
}

/* One scalar value of type t at p. */
static void print_scalar(FILE *out, uint32_t t, const uint8_t *p) {
    uint64_t u;
    switch (t) {
    case GGUF_U8: case GGUF_U16: case GGUF_U32: case GGUF_U64:
        u = le_bytes(p, t == GGUF_U8 ? 1 : t == GGUF_U16 ? 2 : t == GGUF_U32 ? 4 : 8);
        fprintf(out, "%llu", (unsigned long long)u);
        break;
    case GGUF_I8: fprintf(out, "%d", (int8_t)p[0]); break;
    case GGUF_I16: fprintf(out, "%d", (int16_t)le_bytes(p, 2)); break;
    case GGUF_I32: fprintf(out, "%d", (int32_t)le_bytes(p, 4)); break;
    case GGUF_I64: fprintf(out, "%lld", (long long)(int64_t)le_bytes(p, 8)); break;
    case GGUF_F32: {
        uint32_t b = (uint32_t)le_bytes(p, 4);
        float f;
        memcpy(&f, &b, 4);
        fprintf(out, "%g", (double)f);
        break;
    }
    case GGUF_F64: {
        uint64_t b = le_bytes(p, 8);
        double d;
        memcpy(&d, &b, 8);
        fprintf(out, "%g", d);
        break;
    }
    case GGUF_BOOL: fputs(p[0] ? "true" : "false", out); break;
    default: fputs("?", out); break;
    }
}


/* A metadata value; arrays show their first few elements. */
static void print_value(FILE *out, const gguf_kv *kv) {
    if (kv->type == GGUF_STRING) {
        const uint8_t *cur = kv->data;
        gguf_str s = gguf_arr_str_next(&cur);
        print_str(out, s.ptr, s.len, 96);
        return;
    }
    if (kv->type != GGUF_ARRAY) {
        print_scalar(out, kv->type, kv->data);
        return;
    }
    const uint64_t show = 4;
    fputc('[', out);
    if (kv->arr_type == GGUF_STRING) {
        const uint8_t *cur = kv->data;
        for (uint64_t i = 0; i < kv->arr_n && i < show; i++) {
            gguf_str s = gguf_arr_str_next(&cur);
            fputs(i ? ", " : "", out);
            print_str(out, s.ptr, s.len, 32);
        }
    } else if (gguf_vtype_size(kv->arr_type) > 0) {
        for (uint64_t i = 0; i < kv->arr_n && i < show; i++) {
            fputs(i ? ", " : "", out);
            print_scalar(out, kv->arr_type, kv->data + i * (uint64_t)gguf_vtype_size(kv->arr_type));
        }
    } else {
        fputs("...", out);                  /* nested arrays: not shown */
    }
    if (kv->arr_n > show)
        fputs(", ...", out);
    fputc(']', out);
}

static void print_type(FILE *out, uint32_t vtype, const gguf_kv *kv) {
    char buf[48];
    if (vtype == GGUF_ARRAY)
        snprintf(buf, sizeof buf, "arr[%s,%llu]", gguf_vtype_name(kv->arr_type),
                 (unsigned long long)kv->arr_n);
    else
        snprintf(buf, sizeof buf, "%s", gguf_vtype_name(vtype));
    fprintf(out, "%-18s", buf);
}

static void print_shape(FILE *out, const gguf_tensor *t) {
    char buf[96];
    size_t used = (size_t)snprintf(buf, sizeof buf, "[");
    uint32_t nd = t->n_dims ? t->n_dims : 1;
    for (uint32_t d = 0; d < nd && used < sizeof buf; d++)
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%llu", d ? ", " : "",
                                 (unsigned long long)t->ne[d]);
    if (used < sizeof buf)
        snprintf(buf + used, sizeof buf - used, "]");
    fprintf(out, "%-16s", buf);
}

static void print_mb(FILE *out, const char *what, uint64_t bytes, const char *note) {
    fprintf(out, "  %-40s %12llu bytes  %9.1f MiB%s%s\n", what, (unsigned long long)bytes,
            (double)bytes / (1024.0 * 1024.0), note ? "  " : "", note ? note : "");
}

void bn_model_print_info(const bn_model *m, FILE *out) {
    const gguf_file *f = &m->gguf;
    const bn_hparams *hp = &m->hp;
    gguf_str name = { "", 0 };
    gguf_get_str(f, "general.name", &name);
    bn_model_desc d;
    bn_model_describe(m, &d);

    fprintf(out, "architecture:  %s\n", hp->arch);
    fprintf(out, "name:          %.*s\n", (int)(name.len > 200 ? 200 : name.len), name.ptr);
    fprintf(out, "file:          %llu bytes, GGUF v%u, %llu keys, %llu tensors, alignment %u, "
            "data at offset %llu\n", (unsigned long long)f->size, f->version,
            (unsigned long long)f->n_kv, (unsigned long long)f->n_tensors, f->alignment,
            (unsigned long long)f->data_start);
    fprintf(out, "kernel:        %s\n", d.vocab_only ? "none (vocab only)" : d.kernel);
    /* The head: which tensor, stored how, used how. */
    const char *head_src = m->head_tensor ? m->head_tensor : "token_embd.weight";
    const char *head_src_type = m->head_src ? ggml_type_name(m->head_src->type) : "?";
    if (d.vocab_only)
        fprintf(out, "lm head:       not loaded\n");
    else if (m->head.owned)
        fprintf(out, "lm head:       %s (quantized copy of %s, %s)\n", d.head, head_src,
                head_src_type);
    else
        fprintf(out, "lm head:       %s (%s, mapped)\n", d.head, head_src);
    fprintf(out, "parameters:    %llu\n", (unsigned long long)d.n_params);

    fprintf(out, "\nhyperparameters:\n");
    fprintf(out, "  n_vocab      %d\n  n_ctx_train  %d\n  n_embd       %d\n  n_layer      %d\n"
            "  n_ff         %d\n  n_head       %d\n  n_head_kv    %d\n  head_dim     %d\n"
            "  n_rot        %d\n  rope_theta   %g\n  rms_eps      %g\n  attn_scale   %g\n",
            hp->n_vocab, hp->n_ctx_train, hp->n_embd, hp->n_layer, hp->n_ff, hp->n_head,
            hp->n_head_kv, hp->head_dim, hp->n_rot, (double)hp->rope_theta,
            (double)hp->rms_eps, (double)m->attn_scale);

    fprintf(out, "\nmetadata (%llu keys):\n", (unsigned long long)f->n_kv);
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const gguf_kv *kv = &f->kv[i];
        fprintf(out, "  %3llu  ", (unsigned long long)i);
        int klen = kv->key.len > 60 ? 60 : (int)kv->key.len;
        fprintf(out, "%-46.*s ", klen, kv->key.ptr);
        print_type(out, kv->type, kv);
        print_value(out, kv);
        fputc('\n', out);
    }

    /* Tensor table, in file order, with per-type totals. */
    struct type_total { uint32_t type; uint64_t count, bytes; } by_type[8];
    int n_types = 0;
    uint64_t total = 0;
    fprintf(out, "\ntensors (%llu):\n", (unsigned long long)f->n_tensors);
    fprintf(out, "  %4s  %-32s %-5s %-16s %12s %12s\n", "#", "name", "type", "shape", "bytes",
            "offset");
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        int nlen = t->name.len > 64 ? 64 : (int)t->name.len;
        fprintf(out, "  %4llu  %-32.*s %-5s ", (unsigned long long)i, nlen, t->name.ptr,
                ggml_type_name(t->type));
        print_shape(out, t);
        fprintf(out, " %12llu %12llu%s\n", (unsigned long long)t->nbytes,
                (unsigned long long)t->offset,
                gguf_str_eq(t->name, "output.weight") && m->arch->output == BN_ABSENT
                    ? "  (unused: the head is tied)" : "");
        total += t->nbytes;
        int k = 0;
        while (k < n_types && by_type[k].type != t->type)
            k++;
        if (k == n_types && n_types < 8)
            by_type[n_types++] = (struct type_total){ t->type, 0, 0 };
        if (k < n_types) {
            by_type[k].count++;
            by_type[k].bytes += t->nbytes;
        }
    }
    fprintf(out, "totals: %llu tensors, %llu bytes of tensor data",
            (unsigned long long)f->n_tensors, (unsigned long long)total);
    for (int k = 0; k < n_types; k++)
        fprintf(out, "%s %llu %s (%llu bytes)", k ? "," : ";",
                (unsigned long long)by_type[k].count, ggml_type_name(by_type[k].type),
                (unsigned long long)by_type[k].bytes);
    fputc('\n', out);

    /* Memory plan: what stays mapped, what is allocated. The context's
     * scratch depends on its parameters; shown for n_ctx = n_ctx_train. */
    uint64_t embd = d.embd_bytes, head = 0;
    uint64_t kv = d.kv_bytes_per_pos * (uint64_t)hp->n_ctx_train;
    const gguf_tensor *emb_t = gguf_find_tensor(f, "token_embd.weight");
    const char *emb_type = emb_t ? ggml_type_name(emb_t->type) : "?";
    char what[96];
    fprintf(out, "\nmemory plan:\n");
    print_mb(out, "file mapping (read-only, shared)", d.file_bytes, NULL);
    if (d.vocab_only || m->head.W == (const void *)m->tok_embd) {
        snprintf(what, sizeof what, "token_embd / lm head (%s, mapped)", emb_type);
        print_mb(out, what, embd, "read in place, never copied");
    } else {
        snprintf(what, sizeof what, "token_embd (%s, mapped)", emb_type);
        print_mb(out, what, embd, "not resident; rows read with pread");
        embd = 0;
        head = d.head_bytes;
        if (m->head.owned) {
            snprintf(what, sizeof what, "lm head (%s copy of %s)", d.head, head_src);
            print_mb(out, what, head, "allocated; source pages released");
        } else {
            snprintf(what, sizeof what, "lm head (%s, %s, mapped)", head_src, head_src_type);
            print_mb(out, what, head, "read in place");
        }
    }
    print_mb(out, "norm weights (F32)", d.norm_bytes, "copied out of the mapping");
    if (!d.vocab_only) {
        snprintf(what, sizeof what, "ternary weights (%s layout)", d.kernel);
        print_mb(out, what, d.ternary_bytes, "allocated; I2_S pages released");
    } else {
        fprintf(out, "  %-40s not loaded (vocab only)\n", "ternary weights");
    }
    snprintf(what, sizeof what, "KV cache (f16, n_ctx %d)", hp->n_ctx_train);
    print_mb(out, what, kv, NULL);
    print_mb(out, "total resident (excluding scratch)", embd + head + d.norm_bytes + d.ternary_bytes + kv,
             "the KV cache fills as the context does");
}
