"""The task vocabulary of the model catalogue.

Each task has a one-paragraph definition. The definitions are part of the catalogue's
training text (the coarse classifier sees them as labelled documents); they were written
from the task names and the catalogue's own sources, before and independently of the
held-out evaluation queries.
"""

from __future__ import annotations

from graphrec.selection.errors import UnknownTaskError

__all__ = ["TASKS", "check_task"]

#: Task name -> definition. The first twenty are the issue's list; the rest extend it
#: where catalogue entries needed a task of their own.
TASKS: dict[str, str] = {
    "image-classification": (
        "Assign one label from a fixed set of categories to a whole image or photo, "
        "such as recognising which object, animal, product or scene a picture shows."
    ),
    "object-detection": (
        "Find objects in an image or video frame and draw a bounding box with a class "
        "label around each one, for example people, vehicles or items."
    ),
    "face-detection": (
        "Locate human faces in images or camera frames and return a box per face, often "
        "with a few keypoints such as eyes and nose."
    ),
    "face-landmarks": (
        "Estimate the positions of facial feature points such as eye corners, eyebrows, "
        "lips and jaw line on a detected face."
    ),
    "face-recognition": (
        "Compute an identity embedding of a face to verify or identify a person by "
        "comparing it with known faces."
    ),
    "pose-estimation": (
        "Estimate the skeleton of human bodies: the keypoints of joints such as "
        "shoulders, elbows, hips and knees, for one or several people."
    ),
    "hand-tracking": (
        "Detect hands and track the keypoints of fingers and palm over video frames."
    ),
    "segmentation": (
        "Label every pixel of an image with a class or an object mask, separating a "
        "foreground subject from the background or outlining regions."
    ),
    "ocr-detection": (
        "Find where text is in an image: the boxes or polygons of words and text lines "
        "in documents, signs and screenshots."
    ),
    "ocr-recognition": (
        "Read the characters of a cropped text line or word image and output the string."
    ),
    "text-embedding": (
        "Map sentences or documents to dense vectors whose distances reflect meaning, "
        "for semantic search, clustering and retrieval."
    ),
    "text-classification": (
        "Assign a label to a piece of text such as its language, sentiment, topic, "
        "intent or whether it is toxic."
    ),
    "text-generation": ("Generate text token by token from a prompt with a language model."),
    "text-tagging": (
        "Label each character or word of a text, such as word segmentation, adding "
        "diacritics or tagging parts of speech."
    ),
    "text-to-speech": ("Synthesise spoken audio from written text."),
    "speech-recognition": ("Transcribe spoken audio into text (automatic speech recognition)."),
    "speech-enhancement": (
        "Clean up speech audio: suppress noise and other speakers or separate a target voice."
    ),
    "voice-activity-detection": (
        "Decide for each short audio frame whether someone is speaking, separating "
        "speech from silence and background noise."
    ),
    "keyword-spotting": (
        "Detect a short spoken keyword, command or wake word in a continuous audio stream."
    ),
    "audio-feature-extraction": (
        "Turn audio into features or embeddings (spectrograms, pitch, sound tags) used by "
        "other models or for audio similarity."
    ),
    "file-type-detection": ("Identify the format or content type of a file from its bytes."),
    "image-generation": (
        "Create or edit images from text prompts or masks, such as diffusion models and inpainting."
    ),
    "image-embedding": (
        "Map an image to a vector for image similarity, duplicate detection and search."
    ),
    "super-resolution": ("Upscale a low-resolution image or video frame and restore its detail."),
    "nsfw-detection": (
        "Score whether an image contains nudity or adult content that is not safe for work."
    ),
    "captcha-recognition": (
        "Solve captcha images: read distorted characters or locate the target of a "
        "slider or click captcha."
    ),
}


def check_task(task: str) -> str:
    """Return ``task`` if it is in :data:`TASKS`.

    Raises:
        UnknownTaskError: It is not; the message lists the valid tasks.
    """
    if task not in TASKS:
        raise UnknownTaskError(f"unknown task {task!r}; valid tasks: {', '.join(sorted(TASKS))}")
    return task
