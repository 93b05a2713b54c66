"""Bilingual (English/Chinese) domain glossary: bridges a question to text in the other language.

The curated list covers the vocabulary of founders' questions about building on large models;
`Glossary.build` adds the pairs the corpus itself writes as `中文（English）`. A question is
expanded with the other language's terms before lexical search, so "core competitiveness" also
looks for 核心竞争力 and 融资 also looks for funding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from knowledge.text import CJK, english_words, stem

# The glossary entries behind each part of a question: by English word position, by character position.
Spans = tuple[dict[int, set[int]], dict[int, set[int]]]

# English variants | Chinese variants. Variants on one line are synonyms of each other. A leading
# "~" marks everyday words: they are translated, but do not make a question on-topic.
CURATED = """
large model|large models|big model|big models|llm|llms|large language model|large ai model|foundation model|大模型|大型模型|大语言模型|AI大模型
startup|startups|start-up|entrepreneurship|entrepreneur|entrepreneurs|founder|founders|venture|new business|创业|创业者|创业公司|初创企业|创业项目
core competitiveness|core competence|competitive advantage|moat|edge over competitors|核心竞争力|竞争优势|竞争力
~advantage|advantages|benefit|benefits|strength|strengths|pros|优势|好处
~challenge|challenges|difficulty|difficulties|problem|problems|risk|risks|obstacle|obstacles|cons|挑战|困难|风险|难点
~opportunity|opportunities|机遇|机会
~trend|trends|future|outlook|prospect|prospects|future development|发展趋势|趋势|未来|前景|展望
commercialization|commercialize|monetize|monetization|business model|revenue|商业化|商业模式|盈利|变现
~business|commercial|company|enterprise|商业|企业|公司
~application|applications|use case|use cases|scenario|scenarios|industry|industries|应用|应用场景|场景|行业
data privacy|privacy|user privacy|数据隐私|隐私|隐私保护
security|safety|secure|data security|安全|安全性|数据安全
ethics|ethical|moral|social responsibility|responsibility|bias|fairness|伦理|道德|社会责任|责任|偏见|公平
regulation|regulations|law|laws|legal|compliance|policy|policies|government|监管|法规|法律|合规|政策|政府
international cooperation|competition|global|国际合作|竞争|国际
team|talent|talents|hiring|recruit|people|engineers|团队|人才|团队建设
talent shortage|lack of talent|人才短缺
funding|investment|investor|investors|capital|raise money|venture capital|融资|投资|资本|资金
~cost|costs|expensive|cheap|budget|成本|费用|预算
computing resources|compute|computational resources|computing power|hardware|gpu|gpus|tpu|cloud|计算资源|算力|硬件|云服务|云计算|云计算平台
insufficient computing resources|not enough compute|计算资源不足
~data|dataset|datasets|training data|数据|数据集|训练数据
data quality|数据质量
data collection|collect data|gather data|数据收集|收集数据
data preprocessing|preprocessing|data cleaning|clean data|数据预处理|预处理|数据清洗
feature extraction|features|特征提取|特征
~training|train|train a model|model training|训练|模型训练
training time|how long to train|训练时间|多少时间
inference|推理|推理过程
~evaluation|evaluate|metrics|accuracy|评估|模型评估|评估指标|准确率
deployment|deploy|serving|production|部署|模型部署|上线
~optimization|optimize|performance|speed up|优化|性能|性能优化
model compression|compression|pruning|quantization|distillation|模型压缩|剪枝|量化|蒸馏
fine-tuning|fine tune|fine-tune|finetune|微调
pre-training|pretraining|pretrained|pre-trained|预训练
transfer learning|迁移学习
multi-task learning|多任务学习
data augmentation|数据增强
generalization|泛化|泛化能力
explainability|interpretability|explainable ai|xai|transparency|可解释性|解释性|透明性|可解释
loss function|loss|损失函数|损失
mean squared error|mse|均方误差
cross-entropy|cross entropy|交叉熵
activation function|activation|激活函数
sigmoid|sigmoid函数
relu|relu函数
tanh|tanh函数
gradient descent|梯度下降
stochastic gradient descent|sgd|随机梯度下降
learning rate|学习率
backpropagation|back propagation|反向传播
forward propagation|forward pass|前向传播
optimizer|optimization algorithm|optimization algorithms|adam|优化器|优化算法
neural network|neural networks|神经网络
deep learning|深度学习
machine learning|机器学习
artificial intelligence|ai|人工智能
generative adversarial network|generative adversarial networks|gan|gans|生成对抗网络
generator|生成器
discriminator|判别器
variational autoencoder|variational autoencoders|vae|vaes|变分自编码器
autoencoder|encoder|decoder|编码器|解码器
transformer|transformers|self-attention|attention mechanism|自注意力|注意力机制|自注意力机制
convolutional neural network|cnn|卷积神经网络
recurrent neural network|rnn|lstm|循环神经网络
bert|BERT模型
gpt|gpt-3|chatgpt|GPT模型
natural language processing|nlp|language|text|自然语言处理|文本
image generation|image|images|图像生成|图像
image recognition|computer vision|图像识别|计算机视觉
speech recognition|voice|speech|语音识别|语音
speech synthesis|text to speech|语音合成
recommendation|recommender|recommendation system|personalized recommendation|推荐|推荐系统|个性化推荐
customer service|chatbot|客服|智能客服
marketing|营销
content creation|content generation|writing|内容创作|内容生成
healthcare|medical|medicine|health|医疗|健康|医疗健康
finance|financial|banking|insurance|fintech|金融|金融服务|保险
education|teaching|learning platform|教育|培训
autonomous driving|self-driving|自动驾驶
virtual reality|augmented reality|vr|ar|虚拟现实|增强现实
supply chain|供应链
data analysis|analytics|insight|insights|数据分析|洞察
~tools|frameworks|framework|library|libraries|工具|框架|开发工具
tensorflow|pytorch|keras|深度学习框架
learning resources|books|book|courses|course|reading|学习资源|书籍|课程|在线课程|推荐书籍
papers|paper|research|论文|研究
blogs|websites|blog|博客|网站
development environment|environment setup|setup|install|installation|开发环境|环境搭建|安装
source code|code|example code|源代码|代码|代码实例|示例
code analysis|code explanation|代码解读|代码分析
~results|output|运行结果|结果
mathematical model|mathematical models|formula|formulas|math|数学模型|公式|数学
~algorithm|algorithms|algorithm principle|算法|算法原理
~architecture|structure|架构|结构
~parameters|parameter|参数
encryption|encrypt|加密
differential privacy|差分隐私
federated learning|联邦学习
open source|open-source|开源
technical barrier|technical threshold|barrier to entry|entry barrier|技术门槛|门槛
innovation|innovate|创新|技术创新
~efficiency|efficient|productivity|效率
labor cost|labour cost|人力成本
~market|markets|市场|市场机会
~customer|customers|user|users|客户|用户
~product|products|service|services|产品|服务
~case study|case|cases|example|examples|案例|实例|例子
~background|history|development history|背景|发展历程|历史
~core concepts|concept|concepts|概念|核心概念
~summary|conclusion|总结|结语
faq|frequently asked questions|common questions|常见问题|问题
~skills|technical skills|skill|技能|技术技能
model selection|choose a model|select a model|which model|选择模型|选择合适的大模型|模型选择
monitoring|monitor|监控
~api|web service|接口|API接口
~scalability|scale|可扩展性|扩展
ecosystem|生态|生态建设
~characteristics|characteristic|features of|traits|properties|特点|特征|特性
~relationship|relation|relationships|connection|link|compared with|versus|关系|联系|区别
traditional|conventional|traditional startup|traditional business|传统|传统创业|传统企业
~steps|procedure|workflow|pipeline|操作步骤|步骤|流程|过程
~set up|build|building|搭建|构建|建立
~implementation|implement|实现
~analysis|analyze|analyse|分析
~display|showcase|show|展示
~prospects|future prospects|potential|前景|潜力
~field|fields|domain|domains|area|areas|sector|领域
~necessity|necessary|why|必要性|必要
~significance|importance|important|意义|重要性
~current status|status quo|state of|current state|landscape|现状|态势
lessons|lessons learned|takeaways|insights from|启示|经验
~support|supports|支持
~strategy|strategies|approach|approaches|countermeasures|cope|coping|address|策略|应对策略|对策|措施
~direction|directions|发展方向|方向
~definition|define|defined|定义
~principle|principles|fundamentals|basics|how it works|原理|基本原理
~create|creation|创建
compile|compilation|编译
~prediction|predict|predictions|forecast|forecasting|预测
~generation|generate|generating|生成
~management|manage|managing|管理
~processing|process data|处理
version control|git|版本控制
~expansion|expand|extend|extension|拓展|扩展
~strengthen|enhance|加强|增强
~improve|improvement|increase|boost|提升|提高|改进
~learn|learning|study|学习
~developments|updates|news|changes|动态|变化
keywords|关键词
abstract|摘要
author|作者
flowchart|flow chart|diagram|mermaid|流程图
operations|business application|业务|业务应用
~resources|resource|资源
~success|successful|succeed|成功
~choose|choosing|select|selection|pick|选择
~reduce|lower|decrease|cut|降低|减少
~ensure|make sure|guarantee|确保|保证
~solve|fix|resolve|handle|解决|应对
~demand|needs|requirements|requirement|需求
linear regression|regression|线性回归|回归
house price|house prices|housing price|房价
text classification|classify text|文本分类
sentiment analysis|sentiment|情感分析|情感
movie reviews|imdb|电影评论
question answering|qa system|问答系统|问答
~dialogue|conversation|chat|对话
translation|machine translation|翻译|机器翻译
image classification|图像分类
object detection|object recognition|物体识别|目标检测
face recognition|facial recognition|人脸识别
speech to text|transcription|语音转文本
assistant|智能助手
fraud detection|fraud|欺诈检测|欺诈
diagnosis|disease diagnosis|疾病诊断|诊断
drug discovery|drug development|药物研发
personalized|personalization|个性化
smart city|智慧城市
smart manufacturing|manufacturing|智能制造|制造
distributed training|distributed|分布式训练|分布式
hyperparameters|hyperparameter|超参数
batch size|批量大小
overfitting|过拟合
regularization|正则化
normalization|normalize|归一化
labeling|annotation|labels|标注|标签
unsupervised|unsupervised learning|无监督|无监督学习
self-supervised|self-supervised learning|自监督|自监督学习
supervised learning|监督学习
weights|weight|权重
neuron|neurons|神经元
~layer|layers|层
convolution|卷积
embedding|embeddings|word embeddings|word vectors|词向量|嵌入
industry chain|value chain|产业链
business value|commercial value|商业价值
user experience|ux|用户体验
community|communities|社区
andrew ng|吴恩达
stanford|斯坦福
google|谷歌
"""


@dataclass(frozen=True)
class Translation:
    to_chinese: list[str]
    to_english: list[str]
    topics: int  # distinct glossary entries the question mentions


@dataclass
class Glossary:
    """Term groups; each group holds English phrases (as stemmed word tuples) and Chinese terms."""

    english: list[tuple[tuple[str, ...], int]] = field(default_factory=list)
    chinese: list[tuple[str, int]] = field(default_factory=list)
    groups: list[tuple[list[str], list[str]]] = field(default_factory=list)
    generic: set[int] = field(default_factory=set)  # everyday words: translated, but not a topic
    _by_length: list[tuple[str, int]] = field(default_factory=list, repr=False)
    _words: set[str] = field(default_factory=set, repr=False)
    _by_first: dict[str, list[tuple[tuple[str, ...], int]]] = field(default_factory=dict, repr=False)
    _phrases: dict[int, list[tuple[str, ...]]] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, mined: list[tuple[str, str]] = ()) -> Glossary:
        """The curated glossary plus (English, Chinese) pairs mined from the corpus."""
        glossary = cls()
        for line in CURATED.strip().splitlines():
            generic = line.startswith("~")
            variants = [v.strip() for v in line.lstrip("~").split("|") if v.strip()]
            glossary.add(
                [v for v in variants if not CJK.search(v)], [v for v in variants if CJK.search(v)], generic
            )
        for en, zh in mined:
            glossary.merge(en, zh)
        glossary.prepare()
        return glossary

    def prepare(self) -> None:
        """Build the lookup tables once, before the glossary is shared between threads."""
        self._words = {w for phrase, _ in self.english for w in phrase}
        self._by_length = sorted(self.chinese, key=lambda item: -len(item[0]))
        self._by_first = {}
        self._phrases = {}
        for phrase, group in self.english:
            self._by_first.setdefault(phrase[0], []).append((phrase, group))
            self._phrases.setdefault(group, []).append(phrase)

    def merge(self, english: str, chinese: str) -> None:
        """Add a mined pair to the entry that already has one of its sides, else as a new entry."""
        words = tuple(stem(w) for w in english_words(english))
        lowered = chinese.lower()
        for phrase, group in self.english:
            if phrase == words:
                if lowered not in (t.lower() for t in self.groups[group][1]):
                    self.groups[group][1].append(chinese)
                    self.chinese.append((lowered, group))
                return
        for term, group in self.chinese:
            if term == lowered:
                if words:
                    self.groups[group][0].append(english)
                    self.english.append((words, group))
                return
        self.add([english], [chinese])

    def add(self, english: list[str], chinese: list[str], generic: bool = False) -> None:
        if not english or not chinese:
            return
        group = len(self.groups)
        if generic:
            self.generic.add(group)
        self.groups.append((english, chinese))
        for phrase in english:
            words = tuple(stem(w) for w in english_words(phrase))
            if words:
                self.english.append((words, group))
        for term in chinese:
            self.chinese.append((term.lower(), group))

    def knows(self, word: str) -> bool:
        """Whether an English word is part of a glossary phrase (so not a typo)."""
        return stem(word) in self._words

    def gloss(self, text: str) -> str:
        """A rough English rendering of Chinese text: its glossary terms, longest first, in order.

        Used at build time to give Chinese-only sections an English "gloss" the English-centric
        encoder can match an English question against.
        """
        lowered = text.lower()
        found: list[tuple[int, str]] = []
        taken = [False] * len(lowered)
        for term, group in self._by_length:
            start = lowered.find(term)
            while start >= 0:
                end = start + len(term)
                if not any(taken[start:end]):
                    for i in range(start, end):
                        taken[i] = True
                    found.append((start, self.groups[group][0][0]))
                start = lowered.find(term, end)
        for match in re.finditer(r"[A-Za-z][A-Za-z0-9+\-]{1,}", text):
            found.append((match.start(), match.group(0)))
        words: list[str] = []
        for _, phrase in sorted(found):
            if phrase not in words:
                words.append(phrase)
        return " ".join(words)

    def translate(self, question: str, spans: Spans | None = None) -> Translation:
        """Other-language terms for a question: Chinese terms for its English words, English for Chinese.
        `spans` is the question's `spans(question)`, when the caller has it already."""
        by_word, by_char = spans if spans is not None else self.spans(question)
        en_groups: set[int] = set().union(*by_word.values())
        zh_groups: set[int] = set().union(*by_char.values())
        to_chinese = [term for g in sorted(en_groups) for term in self.groups[g][1]]
        to_english = [phrase for g in sorted(zh_groups) for phrase in self.groups[g][0]]
        return Translation(to_chinese, to_english, len((en_groups | zh_groups) - self.generic))

    def spans(self, question: str) -> Spans:
        """The entries behind each part of a question: by English word position (in `english_words`
        order) and by character position, so a word can be matched through any of its synonyms."""
        words = [stem(w) for w in english_words(question)]
        by_word: dict[int, set[int]] = {}
        for start, word in enumerate(words):
            for phrase, group in self._by_first.get(word, ()):
                if tuple(words[start : start + len(phrase)]) == phrase:
                    for position in range(start, start + len(phrase)):
                        by_word.setdefault(position, set()).add(group)
        lowered = question.lower()
        by_char: dict[int, set[int]] = {}
        for term, group in self.chinese:
            start = lowered.find(term)
            while start >= 0:
                for position in range(start, start + len(term)):
                    by_char.setdefault(position, set()).add(group)
                start = lowered.find(term, start + 1)
        return by_word, by_char

    def variants(self, group: int) -> tuple[list[tuple[str, ...]], list[str]]:
        """An entry's English phrases (stemmed word tuples) and Chinese terms (lower case)."""
        return self._phrases.get(group, []), [t.lower() for t in self.groups[group][1]]
