"""The reference network both parity scripts start from: a torchvision ResNet-18 with fixed random
weights whose batch-norm statistics and affine parameters are randomised too, so evaluation mode is not
an identity, plus a fixed input batch and torchvision's logits for it."""
import torch
import torchvision


def reference_model(num_classes: int, seed: int):
    """Returns (model in eval mode, input [4, 3, 32, 32], logits [4, num_classes])."""
    torch.manual_seed(seed)
    model = torchvision.models.resnet18(num_classes=num_classes)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
                module.num_batches_tracked.fill_(17)
    model.eval()
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        logits = model(images)
    return model, images, logits
