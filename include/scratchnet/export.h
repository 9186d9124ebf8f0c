/* scratchnet — a model for other tools: ONNX (for onnxruntime, Netron, other
 * frameworks) and NumPy's .npz, written by the project's own small encoders (protobuf
 * wire format; zip with stored .npy members). Files are written atomically.
 *
 * Both take what the network takes: 784 preprocessed pixels a row (image.h's pipeline and
 * the model's own deskew / width limit happen before the network, not in it).
 *
 * ONNX (opset 13, IR 7): input "input" [N, 784] float; outputs "logits" [N, 10] and
 * "probs" (Softmax). Dense layers are Gemm (B = W, in x out), ReLU Relu, leaky ReLU
 * LeakyRelu, convolutions Conv (weights OIHW, pads for /same), pooling MaxPool (floor);
 * an image input is Reshape'd to NHWC and Transpose'd to NCHW, and back to NHWC before
 * it is flattened for a dense layer, so the dense weights are used as they are.
 *
 * NPZ: "W1", "b1", "W2", "b2", ... for the layers with parameters in order (dense W: in x
 * out; convolution W: K x K x C_in x C_out, HWIO), "spec" (the net spec, a string),
 * "deskew" and "max_width" (the preprocessing, scalars). */
#ifndef SCRATCHNET_EXPORT_H
#define SCRATCHNET_EXPORT_H

#include "scratchnet/error.h"
#include "scratchnet/model.h"

int sn_export_onnx(const sn_net *m, const char *path, sn_error *err);
int sn_export_npz(const sn_net *m, const char *path, sn_error *err);

#endif
