/* classify: reads a digit from a PGM or PNG image with a scratchnet model, through the
 * installed library alone (pkg-config scratchnet):
 *   cc classify.c $(pkg-config --cflags --libs scratchnet) -o classify
 *   ./classify models/scratch.bin digit.pgm   ->   digit.pgm: 7 (p=0.9934)
 * The image goes through the model's own preprocessing (the MNIST pipeline, and the
 * deskew and stroke-width limit the model file records), then the network. */
#include <stdio.h>

#include <scratchnet/image.h>
#include <scratchnet/layers.h>
#include <scratchnet/model.h>
#include <scratchnet/modelfile.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: classify MODEL IMAGE\n");
        return 2;
    }
    sn_error err;
    sn_net net;
    if (sn_model_load(&net, argv[1], &err)) {
        fprintf(stderr, "classify: %s\n", err.msg);
        return 1;
    }
    sn_image img;
    sn_forward_ctx ctx;
    int rc = 1;
    if (sn_image_read(&img, argv[2], &err)) {
        fprintf(stderr, "classify: %s\n", err.msg);
        sn_net_free(&net);
        return 1;
    }
    if (sn_forward_ctx_create(&ctx, &net, 1, 1, &err) == SN_OK) {
        /* One row of 28 x 28 pixels in the context's input, then the forward pass. */
        if (sn_image_to_mnist(&img, &net.pre, ctx.act[0], &err) == SN_OK) {
            float p[10];
            sn_softmax(p, sn_net_forward(&net, &ctx, 1), 1, 10);
            int best = 0;
            for (int k = 1; k < 10; k++)
                if (p[k] > p[best]) best = k;
            printf("%s: %d (p=%.4f)\n", argv[2], best, p[best]);
            rc = 0;
        }
        sn_forward_ctx_free(&ctx);
    }
    if (rc) fprintf(stderr, "classify: %s: %s\n", argv[2], err.msg);
    sn_image_free(&img);
    sn_net_free(&net);
    return rc;
}
