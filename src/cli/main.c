/* `bitnet`: subcommand dispatch, --help and --version. */
#include <string.h>

#include "cli.h"

static int print_version(void) {
    char err[256];
    const char *kernel = bn_kernel_resolve(NULL, err, sizeof err);
    const char *avail[16];
    int n = bn_kernel_variants(avail, 16);
    printf("bitnet %s\n", BN_VERSION);
    printf("kernel: %s", kernel ? kernel : "none");
    if (!kernel) printf(" (%s)", err);
    printf(" (available:");
    for (int i = 0; i < n && i < 16; i++) printf(" %s", avail[i]);
    printf(")\n");
    return 0;
}

static int cmd_info(const bn_cli_opts *o) {
    bn_model *m = bn_cli_load_model(o, 0, NULL);
    if (!m) return 1;
    bn_model_print_info(m, stdout);
    bn_model_free(m);
    return 0;
}

static const struct {
    const char *name;
    int cmd;
    int (*run)(const bn_cli_opts *);
} commands[] = {
    {"bench", BN_CMD_BENCH, bn_cmd_bench},
    {"tokenize", BN_CMD_TOKENIZE, bn_cmd_tokenize},
    {"logits", BN_CMD_LOGITS, bn_cmd_logits},
    {"perplexity", BN_CMD_PERPLEXITY, bn_cmd_perplexity},
    {"info", BN_CMD_INFO, cmd_info},
    {"serve", BN_CMD_SERVE, bn_cmd_serve},
};

int main(int argc, char **argv) {
    int cmd = BN_CMD_GENERATE, first = 1;
    int (*run)(const bn_cli_opts *) = bn_cmd_generate;
    if (argc > 1) {
        if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
            if (argc != 2) return bn_err("--version takes no arguments");
            print_version();
            return bn_cli_close_stdout();
        }
        if (strcmp(argv[1], "help") == 0) {
            bn_print_usage(stdout);
            return bn_cli_close_stdout();
        }
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
            if (strcmp(argv[1], commands[i].name) == 0) {
                cmd = commands[i].cmd;
                run = commands[i].run;
                first = 2;
            }
        }
    }
    bn_cli_opts o;
    int help = 0;
    if (bn_cli_parse(cmd, argc, argv, first, &o, &help) != 0) return 1;
    if (help) {
        bn_print_usage(stdout);
        return bn_cli_close_stdout();
    }
    int rc = run(&o) == 0 ? 0 : 1;
    return bn_cli_close_stdout() ? 1 : rc;
}
