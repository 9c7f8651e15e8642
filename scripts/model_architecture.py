"""Reface face-attribute network: a multi-task ResNet whose residual blocks carry CBAM attention.

Input: float32 [N,3,224,224], RGB, ImageNet-normalised (see scripts/preprocess.py).
forward() returns ONE [N,10] tensor because the C server reads a single output:
  column 0 = age in years, column 1 = P(male), columns 2..9 = softmax over EMOTIONS.
forward_heads() returns the raw (age, gender_logit, emotion_logits) for training losses.
Everything here must stay torch.jit.script-able (the C side loads the scripted module).
"""
from typing import List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

# Output order of the emotion columns; the model card and the C server depend on it.
EMOTIONS = ["anger", "contempt", "disgust", "fear", "happiness", "neutral", "sadness", "surprise"]

# Widths/depths picked so the whole network lands near 9.4 M parameters
# (ResNet-18 layout with a narrower last stage: 9,407,586 parameters).
DEFAULT_WIDTHS = [64, 128, 256, 442]
DEFAULT_DEPTHS = [2, 2, 2, 2]


class ChannelAttention(nn.Module):
    """CBAM channel gate: a shared MLP over avg- and max-pooled descriptors."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 8)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(F.adaptive_avg_pool2d(x, 1))
        mx = self.mlp(F.adaptive_max_pool2d(x, 1))
        return x * torch.sigmoid(avg + mx)


class SpatialAttention(nn.Module):
    """CBAM spatial gate: a 7x7 conv over the channel-wise mean and max maps."""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = torch.mean(x, dim=1, keepdim=True)
        mx = torch.amax(x, dim=1, keepdim=True)
        return x * torch.sigmoid(self.conv(torch.cat([avg, mx], dim=1)))


class CBAMBlock(nn.Module):
    """Basic residual block (two 3x3 convs); CBAM refines the residual branch before the add."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.ca = ChannelAttention(cout)
        self.sa = SpatialAttention()
        # A projection shortcut only where shape changes; an Identity keeps scripting simple.
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        else:
            self.shortcut = nn.Sequential()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        out = self.sa(self.ca(out))
        return F.relu(out + self.shortcut(x), inplace=True)


class RefaceNet(nn.Module):
    """Shared CBAM-ResNet trunk + three small heads (age, gender, emotion)."""

    def __init__(self, widths: List[int] = DEFAULT_WIDTHS, depths: List[int] = DEFAULT_DEPTHS,
                 num_emotions: int = 8, dropout: float = 0.2):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        blocks: List[nn.Module] = []
        cin = widths[0]
        for i in range(len(widths)):
            for j in range(depths[i]):
                stride = 2 if (j == 0 and i > 0) else 1
                blocks.append(CBAMBlock(cin, widths[i], stride))
                cin = widths[i]
        self.trunk = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(dropout)
        # Separate tiny MLP heads so tasks do not fight over one linear layer.
        self.age_head = nn.Sequential(nn.Linear(cin, 128), nn.ReLU(inplace=True), nn.Linear(128, 1))
        self.gender_head = nn.Sequential(nn.Linear(cin, 64), nn.ReLU(inplace=True), nn.Linear(64, 1))
        self.emotion_head = nn.Sequential(nn.Linear(cin, 128), nn.ReLU(inplace=True),
                                          nn.Linear(128, num_emotions))
        # Start the age output near a typical adult age so early MSE is not dominated by bias.
        nn.init.constant_(self.age_head[2].bias, 30.0)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.trunk(self.stem(x))
        return self.dropout(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    def forward_heads(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Raw outputs for training: age [N], gender logit [N], emotion logits [N,8]."""
        f = self.features(x)
        return (self.age_head(f).squeeze(1), self.gender_head(f).squeeze(1), self.emotion_head(f))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        age, g_logit, e_logits = self.forward_heads(x)
        return torch.cat([age.unsqueeze(1), torch.sigmoid(g_logit).unsqueeze(1),
                          torch.softmax(e_logits, dim=1)], dim=1)


def build_model(**kwargs) -> RefaceNet:
    return RefaceNet(**kwargs)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


if __name__ == "__main__":
    m = build_model().eval()
    print("parameters: %d (%.2f M)" % (count_parameters(m), count_parameters(m) / 1e6))
    s = torch.jit.script(m)
    print("output shape:", tuple(s(torch.zeros(2, 3, 224, 224)).shape))
