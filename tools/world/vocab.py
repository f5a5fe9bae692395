"""Word lists the simulated corpus is written from (original lists written for this simulation).

Topic phrases are a modifier and a noun; each topic also has an alias phrase (the name another
community uses) that shares no word with it, so papers written with the alias are hard to find by
searching the topic's words. Aspects (settings and applications) come in main/alias pairs too.
Modifiers, nouns, aspect words and filler words are disjoint sets (tests check it), so a search for a
topic's words does not match another topic by accident.
"""

from __future__ import annotations

MODIFIERS = (
    "sparse contrastive hierarchical bayesian adversarial causal probabilistic differentiable variational "
    "spectral equivariant multiscale low-rank continual curriculum neural stochastic implicit structured "
    "latent recurrent kernelized energy-based self-supervised few-shot multimodal quantum topological "
    "geometric robust private modular generative autoregressive invertible dynamic symbolic relational "
    "hyperbolic compositional evolutionary distributional federated"
).split()

NOUNS = (
    "attention pretraining distillation diffusion pruning quantization retrieval planning tokenization "
    "augmentation alignment calibration embeddings clustering segmentation regularization normalization "
    "sampling inference optimization routing memory decoding parsing tracking reasoning exploration "
    "transformers autoencoders flows policies ensembles hashing compression matching forecasting ranking "
    "denoising adaptation fusion"
).split()

# (main phrase, alias phrase): what a question asks about, and how some papers phrase it instead.
ASPECTS = (
    ("long documents", "extended texts"),
    ("medical imaging", "clinical scans"),
    ("speech recognition", "spoken transcription"),
    ("time series", "temporal signals"),
    ("edge devices", "embedded hardware"),
    ("code generation", "program synthesis"),
    ("autonomous driving", "driverless vehicles"),
    ("protein structure", "biomolecular folding"),
    ("recommender engines", "personalized suggestions"),
    ("machine translation", "crosslingual transfer"),
    ("question answering", "reading comprehension"),
    ("image captioning", "visual description"),
    ("video understanding", "moving footage"),
    ("weather prediction", "climate modeling"),
    ("financial markets", "stock trading"),
    ("robot manipulation", "robotic grasping"),
    ("legal contracts", "court rulings"),
    ("molecule design", "drug discovery"),
    ("satellite imagery", "remote sensing"),
    ("dialogue systems", "chatbot assistants"),
    ("social networks", "web communities"),
    ("traffic flow", "urban mobility"),
    ("song writing", "melody creation"),
    ("point clouds", "lidar sweeps"),
    ("minority languages", "endangered dialects"),
    ("tabular records", "spreadsheet tables"),
    ("theorem proving", "formal mathematics"),
    ("scientific literature", "research articles"),
    ("network intrusions", "malware forensics"),
    ("power grids", "electricity distribution"),
    ("wearable sensors", "body monitors"),
    ("strategy games", "competitive play"),
    ("crop monitoring", "precision agriculture"),
    ("fraud detection", "anomalous transactions"),
    ("fake news", "misinformation spread"),
    ("sign language", "gesture interpretation"),
    ("materials science", "crystal properties"),
    ("galaxy surveys", "astronomical catalogs"),
    ("particle physics", "collider events"),
    ("fluid dynamics", "turbulence simulation"),
    ("supply chains", "inventory logistics"),
    ("online education", "intelligent tutoring"),
)

# Generic academic words used around the topic words; none of them is a topic or aspect word.
ADJECTIVES = (
    "Efficient Scalable Simple Practical Provable Faster Unified Interpretable Lightweight Principled "
    "Accurate Flexible Stable Universal Effective"
).split()

PROPERTIES = ("Limits Benefits Role Capacity Pitfalls Geometry Behavior Complexity Expressivity Generalization").split()

CLAIMS = (
    "improves accuracy",
    "reduces computational cost",
    "generalizes to unseen conditions",
    "scales to large inputs",
    "is stable during training",
    "needs fewer labels",
)

COMPONENTS = (
    "a lightweight scoring module",
    "a two-stage training schedule",
    "a learned gating mechanism",
    "a theoretically grounded objective",
    "an auxiliary consistency loss",
    "a simple caching scheme",
    "a plug-in refinement step",
)

# Section titles of the method and experiments parts.
METHOD_TITLES = ("Method", "Approach", "Proposed Method", "Methodology")
METHOD_SUBSECTIONS = (
    "Problem Formulation",
    "Preliminaries",
    "Model Architecture",
    "Training Objective",
    "Theoretical Analysis",
    "Implementation Details",
)
RELATED_TITLES = ("Related Work", "Related Works", "Background and Related Work", "Prior Work")
EXPERIMENT_SUBSECTIONS = ("Experimental Setup", "Datasets", "Baselines", "Main Results", "Ablation Study")

QUESTION_TEMPLATES = (
    "Which papers study {topic} for {aspect}?",
    "Find research that applies {topic} to {aspect}.",
    "What work has been done on {topic} in the context of {aspect}?",
    "Could you list studies proposing {topic} methods for {aspect}?",
    "Give me papers on {topic} that address {aspect}.",
    "I am looking for approaches using {topic} in {aspect}.",
)

FIRST_NAMES = (
    "Ada Bilal Chen Dana Elif Farid Greta Hiro Ines Jonas Kavya Luca Mei Nadia Omar Priya Quentin Rosa Sven "
    "Tariq Uma Viktor Wen Ximena Yusuf Zara Amara Boris Camila Dmitri Esther Felix Gael Hana Ivan Jin Keiko "
    "Lars Maya Nikos"
).split()

LAST_NAMES = (
    "Abara Bergstrom Castillo Dubois Eriksen Fujita Gallo Haddad Ibsen Jovanovic Kowalski Lindqvist Moreau "
    "Nakamura Okafor Petrov Quispe Rahman Santos Takahashi Umarov Varga Weber Xu Yilmaz Zhang Almeida Brandt "
    "Costa Dalton Ekwueme Fischer Grant Horvat Iyer Jensen Kim Laurent Mendes Novak"
).split()

VENUES = (
    "Advances in Neural Information Processing Systems",
    "International Conference on Machine Learning",
    "International Conference on Learning Representations",
    "Proceedings of the Annual Meeting of the Association for Computational Linguistics",
    "IEEE Conference on Computer Vision and Pattern Recognition",
    "AAAI Conference on Artificial Intelligence",
    "Transactions on Machine Learning Research",
    "Journal of Machine Learning Research",
    "Physical Review Letters",
    "Nature Communications",
)

# Primary arXiv categories and the archive an old-style (pre-2007) id uses for them.
CATEGORIES = {
    "cs.LG": "cs",
    "cs.CL": "cs",
    "cs.CV": "cs",
    "cs.AI": "cs",
    "cs.IR": "cs",
    "stat.ML": "math",
    "cs.RO": "cs",
    "quant-ph": "quant-ph",
    "cond-mat.dis-nn": "cond-mat",
    "math.OC": "math",
    "hep-th": "hep-th",
}

DOI_PREFIXES = ("10.1109", "10.1145", "10.1016", "10.1007", "10.1038", "10.1103")

# Books and reports cited in bibliographies but absent from the corpus.
EXTERNAL_TITLES = (
    "Lecture Notes on {x}",
    "A Practical Handbook of {x}",
    "{x}: Theory and Practice",
    "Technical Report on {x}",
)
