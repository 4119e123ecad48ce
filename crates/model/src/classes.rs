//! The classes a network answers with. Every network starts from the ten Fashion-MNIST
//! classes, in label order (label `i` is `CLASS_NAMES[i]`); fine-tuning in the tab may add the
//! user's own after them ([`crate::head`]). The names travel in the weights file, so the
//! width of a network's output layer is the length of its class list.

pub const NUM_CLASSES: usize = 10;

pub const CLASS_NAMES: [&str; NUM_CLASSES] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

/// Most classes a network may have, the ten included: room for 22 of the user's own.
pub const MAX_CLASSES: usize = 32;
/// Longest class name, in characters: it has to fit a card's bars.
pub const MAX_NAME_CHARS: usize = 40;

/// The ten Fashion-MNIST class names, owned.
pub fn fashion_names() -> Vec<String> {
    CLASS_NAMES.iter().map(|s| s.to_string()).collect()
}

/// Why a class name (or a list of them) cannot be used. Each says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClassNameError {
    #[error("Give the class a name.")]
    Empty,
    #[error("“{0}” is too long: a class name has at most {MAX_NAME_CHARS} characters.")]
    TooLong(String),
    #[error("There is already a class called “{0}”: choose another name.")]
    Duplicate(String),
    #[error("A model holds at most {MAX_CLASSES} classes (the ten Fashion-MNIST ones included): remove one first.")]
    TooMany,
    #[error("The ten Fashion-MNIST classes are built in: only your own classes can be renamed or removed.")]
    BuiltIn,
    #[error("There is no class number {0}.")]
    NoSuchClass(usize),
}

/// `name` tidied (surrounding and repeated spaces removed) if it may join `existing`, whose
/// entry `except` (the class being renamed) does not count. Names compare without regard to
/// case, so "hat" and "Hat" cannot both exist.
pub fn check_name(existing: &[String], except: Option<usize>, name: &str) -> Result<String, ClassNameError> {
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() {
        return Err(ClassNameError::Empty);
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(ClassNameError::TooLong(name));
    }
    let taken = existing.iter().enumerate().any(|(i, other)| Some(i) != except && other.to_lowercase() == name.to_lowercase());
    if taken {
        return Err(ClassNameError::Duplicate(name));
    }
    Ok(name)
}

/// Checks a whole class list, as a weights file's header gives it: the ten Fashion-MNIST
/// classes first and in order, then valid, distinct names, [`MAX_CLASSES`] at most.
pub fn check_names(names: &[String]) -> Result<(), ClassNameError> {
    if names.len() > MAX_CLASSES {
        return Err(ClassNameError::TooMany);
    }
    if names.len() < NUM_CLASSES || names[..NUM_CLASSES].iter().zip(CLASS_NAMES).any(|(a, b)| a != b) {
        return Err(ClassNameError::BuiltIn);
    }
    for (i, name) in names.iter().enumerate().skip(NUM_CLASSES) {
        if check_name(&names[..i], None, name)? != *name {
            return Err(ClassNameError::Empty);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_tidied_and_refused_with_a_reason() {
        let names = fashion_names();
        assert_eq!(check_name(&names, None, "  Woolly   hat "), Ok("Woolly hat".into()));
        assert_eq!(check_name(&names, None, "   "), Err(ClassNameError::Empty));
        assert_eq!(check_name(&names, None, "sneaker"), Err(ClassNameError::Duplicate("sneaker".into())));
        assert!(matches!(check_name(&names, None, &"x".repeat(41)), Err(ClassNameError::TooLong(_))));
        // Renaming a class to its own name (in another case) is allowed.
        assert_eq!(check_name(&names, Some(7), "SNEAKER"), Ok("SNEAKER".into()));
        assert!(ClassNameError::Duplicate("Hat".into()).to_string().contains("another name"));
    }

    #[test]
    fn a_class_list_keeps_the_ten_first_and_its_own_names_distinct() {
        let mut names = fashion_names();
        assert_eq!(check_names(&names), Ok(()));
        names.push("Hat".into());
        assert_eq!(check_names(&names), Ok(()));
        names.push("hat".into());
        assert_eq!(check_names(&names), Err(ClassNameError::Duplicate("hat".into())));
        names.pop();
        names.swap(0, 1);
        assert_eq!(check_names(&names), Err(ClassNameError::BuiltIn));
        let mut many = fashion_names();
        many.extend((0..MAX_CLASSES - NUM_CLASSES + 1).map(|i| format!("class {i}")));
        assert_eq!(check_names(&many), Err(ClassNameError::TooMany));
        many.pop();
        assert_eq!(check_names(&many), Ok(()));
    }
}
