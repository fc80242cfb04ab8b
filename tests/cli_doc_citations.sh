#!/usr/bin/env bash
# Every citation of the project's docs in the code ("docs/FILE.md, Heading")
# names a file in docs/ and a heading of that file, and nothing cites a
# spec that is not in the repository. Headings are cited, not numbers, so a
# renamed heading must be renamed with its citations; this test says which.
. "$(dirname "$0")/lib_cli.sh" "$@"

cd "$SRC"
dirs="include src kernels tools tests CMakeLists.txt"
n=0
while IFS= read -r hit; do
    where=${hit%%:docs/*}
    cite=docs/${hit#*:docs/}
    file=${cite%%,*}
    rest=${cite#*, }
    rest=${rest#\"}
    if [ ! -f "$file" ]; then
        fail "$where: cites $file, which does not exist"
        continue
    fi
    ok=0
    while IFS= read -r heading; do
        h=${heading#\#\# }
        h=${h#\#\#\# }
        case "$rest" in "$h"*) ok=1; break ;; esac
        # a citation wrapped onto the next line: its first line begins the heading
        [ ${#rest} -ge 8 ] && case "$h" in "$rest"*) ok=1; break ;; esac
    done < <(grep -E '^###? ' "$file")
    [ $ok = 1 ] || fail "$where: no heading of $file begins '${rest:0:40}'"
    n=$((n + 1))
done < <(grep -rnoE 'docs/[A-Z_]+\.md, "?[A-Za-z0-9][^*"()]*' $dirs | grep -v '^tests/cli_doc_citations.sh')

# Specs outside the repository are never cited.
if grep -rnE '\bSPEC(-FAMILY)?(\.md)? ?§?[0-9]' $dirs | grep -v '^tests/cli_doc_citations.sh'; then
    fail "citations of a spec that is not in the repository (above)"
fi
[ $n -gt 0 ] || fail "found no citations at all: the pattern is broken"
echo "$n citations checked"
exit $((failures > 0))
