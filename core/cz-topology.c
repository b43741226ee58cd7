#include "cz-topology.h"

/* Zhang, Isola & Efros (2016), colorization_deploy_v2.prototxt: blocks 1-7
 * of 3x3 convs (the last of blocks 1-3 with stride 2, blocks 5-6 dilated 2),
 * each block ending in batch norm after its last ReLU; block 8 a 4x4
 * stride-2 transposed conv, two 3x3 convs, a 1x1 conv to the 313 logits. */
#define C3(n, i, o, s, d, bn) {n, CZ_LAYER_CONV, i, o, 3, s, d, d, 1, bn}
const CzLayer cz_layers[CZ_N_LAYERS] = {
  C3 ("conv1_1", CZ_WIDTH_INPUT, 0, 1, 1, 0),
  C3 ("conv1_2", 0, 0, 2, 1, 1),
  C3 ("conv2_1", 0, 1, 1, 1, 0),
  C3 ("conv2_2", 1, 1, 2, 1, 2),
  C3 ("conv3_1", 1, 2, 1, 1, 0),
  C3 ("conv3_2", 2, 2, 1, 1, 0),
  C3 ("conv3_3", 2, 2, 2, 1, 3),
  C3 ("conv4_1", 2, 3, 1, 1, 0),
  C3 ("conv4_2", 3, 3, 1, 1, 0),
  C3 ("conv4_3", 3, 3, 1, 1, 4),
  C3 ("conv5_1", 3, 4, 1, 2, 0),
  C3 ("conv5_2", 4, 4, 1, 2, 0),
  C3 ("conv5_3", 4, 4, 1, 2, 5),
  C3 ("conv6_1", 4, 5, 1, 2, 0),
  C3 ("conv6_2", 5, 5, 1, 2, 0),
  C3 ("conv6_3", 5, 5, 1, 2, 6),
  C3 ("conv7_1", 5, 6, 1, 1, 0),
  C3 ("conv7_2", 6, 6, 1, 1, 0),
  C3 ("conv7_3", 6, 6, 1, 1, 7),
  {"conv8_1", CZ_LAYER_DECONV, 6, 7, 4, 2, 1, 1, 1, 0},
  C3 ("conv8_2", 7, 7, 1, 1, 0),
  C3 ("conv8_3", 7, 7, 1, 1, 0),
  {"conv8_313", CZ_LAYER_CONV, 7, CZ_WIDTH_BINS, 1, 1, 0, 1, 0, 0},
};
