//! The ten Fashion-MNIST classes, in label order (label `i` is `CLASS_NAMES[i]`).

pub const NUM_CLASSES: usize = 10;

pub const CLASS_NAMES: [&str; NUM_CLASSES] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
