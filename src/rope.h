/* RoPE (docs/NUMERICS.md, RoPE): the angles of a position and the rotation
 * of one head, shared by the forward pass (q and k of new tokens) and the
 * context shift (cached K moved to new positions), so both use the same
 * theta sequence and the same pairs. */
#ifndef BN_ROPE_H
#define BN_ROPE_H

#include "arch.h"
#include "bitnet.h"

/* powf(rope_theta, -2 / n_rot): the factor between consecutive pairs' angles. */
float bn_rope_theta_scale(const bn_hparams *hp);

/* cs[2i], cs[2i + 1] = cos, sin of pair i's angle for position pos: the angle
 * starts at pos and is multiplied by theta_scale once per pair, in float
 * (as ggml does). pos may be negative (a shift back). */
void bn_rope_angles(float *cs, int pos, int n_rot, float theta_scale);

/* Rotates the first n_rot dims of one head x by the angles cs, with the
 * pairs of the architecture's style (NEOX: (i, i + n_rot/2); NORM: (2i, 2i + 1)). */
void bn_rope_rotate(enum bn_rope_style style, float *x, const float *cs, int n_rot);

#endif
