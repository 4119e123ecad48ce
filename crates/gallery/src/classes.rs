//! The classes the page teaches and answers with: the model's (the ten Fashion-MNIST classes,
//! then the user's own that it has learnt) and the user's own added since, which the next
//! fine-tuning run teaches it. Adding, renaming and removing them, with the rules a user
//! would expect, and what each change means for the model and the taught photos.

use fashion_model::{
    LabelledImages, NUM_CLASSES,
    classes::{ClassNameError, MAX_CLASSES, check_name, fashion_names},
};

use crate::TeachError;

/// The class list. Labels are indices into it; the first [`ClassList::learnt`] are the
/// model's output rows, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassList {
    names: Vec<String>,
    learnt: usize,
}

impl Default for ClassList {
    /// The ten Fashion-MNIST classes, all learnt.
    fn default() -> Self {
        Self { names: fashion_names(), learnt: NUM_CLASSES }
    }
}

/// What a change of the list asks of the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelChange {
    /// Nothing: the class was not learnt yet.
    None,
    /// Rewrite the model's class names (a rename: no retraining).
    Rename,
    /// Drop this output row from the model.
    DropRow(usize),
}

impl ClassList {
    /// The list after the model changed (loaded, fine-tuned, reset): its classes, then the
    /// user's classes it does not know by name, as not learnt yet. None is lost: after a reset
    /// to the shipped model the user's classes wait to be taught again, with their photos.
    pub fn with_model(&self, model_names: &[String]) -> Self {
        Self { names: model_names.to_vec(), learnt: model_names.len() }.with_pending(&self.names[NUM_CLASSES.min(self.names.len())..])
    }

    /// This list and, after it, those of `names` it does not hold yet, as classes not learnt
    /// (names that are not valid, or past [`MAX_CLASSES`], are left out).
    pub fn with_pending(mut self, names: &[String]) -> Self {
        for name in names {
            if check_name(&self.names, None, name).is_ok() && self.names.len() < MAX_CLASSES {
                self.names.push(name.clone());
            }
        }
        self
    }

    /// The label in `other` of this list's class `label`, matched by name; `None` when `other`
    /// has no class of that name (it was removed). Taught photos follow their class this way
    /// through every change of the list but a rename.
    pub fn label_in(&self, other: &ClassList, label: u8) -> Option<u8> {
        let name = self.names.get(label as usize)?;
        other.names.iter().position(|n| n == name).map(|i| i as u8)
    }

    /// All class names, in label order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The name of label `label` ("class N" past the end: a late answer of a removed class).
    pub fn name(&self, label: usize) -> String {
        self.names.get(label).cloned().unwrap_or_else(|| format!("class {label}"))
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// How many of the classes the model has learnt (its output rows).
    pub fn learnt(&self) -> usize {
        self.learnt
    }

    /// The user's classes the model has not learnt yet.
    pub fn pending(&self) -> &[String] {
        &self.names[self.learnt..]
    }

    /// Whether `label` is one of the user's own classes (which can be renamed and removed).
    pub fn is_own(&self, label: usize) -> bool {
        (NUM_CLASSES..self.names.len()).contains(&label)
    }

    /// Adds a class of the user's; returns its label.
    pub fn add(&mut self, name: &str) -> Result<usize, ClassNameError> {
        let name = check_name(&self.names, None, name)?;
        if self.names.len() >= MAX_CLASSES {
            return Err(ClassNameError::TooMany);
        }
        self.names.push(name);
        Ok(self.names.len() - 1)
    }

    /// Renames one of the user's classes.
    pub fn rename(&mut self, label: usize, name: &str) -> Result<ModelChange, ClassNameError> {
        self.own(label)?;
        self.names[label] = check_name(&self.names, Some(label), name)?;
        Ok(if label < self.learnt { ModelChange::Rename } else { ModelChange::None })
    }

    /// Removes one of the user's classes; later labels move down one ([`Self::label_in`]).
    pub fn remove(&mut self, label: usize) -> Result<ModelChange, ClassNameError> {
        self.own(label)?;
        self.names.remove(label);
        if label < self.learnt {
            self.learnt -= 1;
            return Ok(ModelChange::DropRow(label));
        }
        Ok(ModelChange::None)
    }

    fn own(&self, label: usize) -> Result<(), ClassNameError> {
        if label >= self.names.len() {
            Err(ClassNameError::NoSuchClass(label))
        } else if label < NUM_CLASSES {
            Err(ClassNameError::BuiltIn)
        } else {
            Ok(())
        }
    }

    /// Fine-tuning can teach every class: each one not learnt yet has a photo to learn from
    /// in `train`.
    pub fn ready_to_teach(&self, train: &LabelledImages) -> Result<(), TeachError> {
        for (label, name) in self.names.iter().enumerate().skip(self.learnt) {
            if !train.labels.iter().any(|&l| l as usize == label) {
                return Err(TeachError::ClassWithoutPhotos(name.clone()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use fashion_model::IMAGE_PIXELS;

    use super::*;

    #[test]
    fn own_classes_are_added_after_the_ten_with_the_names_a_user_expects() {
        let mut classes = ClassList::default();
        assert_eq!(classes.add("  Hat "), Ok(10));
        assert_eq!(classes.add("Scarf"), Ok(11));
        assert_eq!(classes.pending(), ["Hat", "Scarf"]);
        assert_eq!(classes.add(""), Err(ClassNameError::Empty));
        assert_eq!(classes.add("hat"), Err(ClassNameError::Duplicate("hat".into())));
        assert_eq!(classes.add("Coat"), Err(ClassNameError::Duplicate("Coat".into())));
        assert!(classes.is_own(11) && !classes.is_own(9) && !classes.is_own(12));
        // At least twenty classes in all; at most MAX_CLASSES.
        for i in classes.len()..MAX_CLASSES {
            classes.add(&format!("Class {i}")).unwrap();
        }
        assert_eq!(classes.len(), MAX_CLASSES);
        assert_eq!(classes.add("One more"), Err(ClassNameError::TooMany));
    }

    #[test]
    fn renaming_and_removing_touch_own_classes_only_and_say_what_the_model_must_do() {
        let mut names = fashion_names();
        names.push("Hat".into());
        let mut classes = ClassList::default().with_model(&names);
        classes.add("Scarf").unwrap();
        assert_eq!(classes.learnt(), 11);
        assert_eq!(classes.rename(10, "Sun hat"), Ok(ModelChange::Rename));
        assert_eq!(classes.rename(11, "Shawl"), Ok(ModelChange::None));
        assert_eq!(classes.rename(11, "sun HAT"), Err(ClassNameError::Duplicate("sun HAT".into())));
        assert_eq!(classes.rename(3, "Gown"), Err(ClassNameError::BuiltIn));
        assert_eq!(classes.remove(0), Err(ClassNameError::BuiltIn));
        assert_eq!(classes.remove(12), Err(ClassNameError::NoSuchClass(12)));
        let before = classes.clone();
        assert_eq!(classes.remove(10), Ok(ModelChange::DropRow(10)));
        // Taught photos follow their class: the removed one's are untaught, later ones move down.
        assert_eq!([10, 11, 4].map(|l| before.label_in(&classes, l)), [None, Some(10), Some(4)]);
        assert_eq!(classes.names()[10], "Shawl");
        assert_eq!((classes.learnt(), classes.pending().len()), (10, 1));
        assert_eq!(classes.remove(10), Ok(ModelChange::None));
        assert_eq!(classes, ClassList::default());
    }

    #[test]
    fn a_new_model_keeps_the_classes_not_learnt_yet_and_fine_tuning_needs_photos_of_them() {
        let mut classes = ClassList::default();
        classes.add("Hat").unwrap();
        classes.add("Scarf").unwrap();
        let mut learnt = fashion_names();
        learnt.push("Hat".into());
        let after = classes.with_model(&learnt);
        assert_eq!(after.names()[10..], ["Hat", "Scarf"]);
        assert_eq!(after.learnt(), 11);
        // Back to the shipped model: both are to be taught again, and the photos keep them.
        let reset = after.with_model(&fashion_names());
        assert_eq!(reset.pending(), ["Hat", "Scarf"]);
        assert_eq!(after.label_in(&reset, 10), Some(10));
        assert_eq!(classes.with_model(&fashion_names()).pending(), ["Hat", "Scarf"]);
        // A project's classes join those here by name; a name already present is not doubled.
        let mixed = ClassList::default().with_pending(&["Scarf".into(), "Belt".into(), "hat".into(), " ".into()]);
        assert_eq!(mixed.with_model(&learnt).names()[10..], ["Hat", "Scarf", "Belt"]);
        assert_eq!(mixed.label_in(&mixed.with_model(&learnt), 10), Some(11));

        let mut train = LabelledImages::default();
        train.push(&[0; IMAGE_PIXELS], 10);
        assert_eq!(classes.ready_to_teach(&train), Err(TeachError::ClassWithoutPhotos("Scarf".into())));
        train.push(&[0; IMAGE_PIXELS], 11);
        assert_eq!(classes.ready_to_teach(&train), Ok(()));
        assert!(TeachError::ClassWithoutPhotos("Scarf".into()).to_string().contains("Scarf"));
    }
}
