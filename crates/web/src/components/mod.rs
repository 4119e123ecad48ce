//! The page's components, one per part of the screen.

pub mod about;
pub mod badge;
pub mod camera;
pub mod card;
pub mod class_select;
pub mod classes;
pub mod examples;
pub mod finetune;
pub mod framing;
pub mod project;
pub mod upload;
pub mod weights;
